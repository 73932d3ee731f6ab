"""Ten successive versions of a small library app's SQLAlchemy models: every kind of change, renames included.

``tests.model_history:v1`` ... ``:v10`` are what ``makemigrations --models`` reads; HINTS says which
renames each step needs (``--rename``) and DESTRUCTIVE which steps drop something.
"""

from __future__ import annotations

import sqlalchemy as sa


def version(n: int) -> sa.MetaData:
    md = sa.MetaData()
    books = "titles" if n >= 6 else "books"
    email = "email" if n >= 3 else "mail"

    authors = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=n >= 9),
        sa.Column(email, sa.String(120)),
    ]
    if 2 <= n < 8:
        authors.append(sa.Column("born", sa.Date))
    if n >= 10:
        authors.append(sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")))
    author_items: list[sa.SchemaItem] = []
    if n >= 7:
        author_items.append(sa.UniqueConstraint(email, name="authors_email_key"))
    sa.Table("authors", md, *authors, *author_items)

    book = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(300 if n >= 5 else 200), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id", name="books_author_fk")),
        sa.Column("price", sa.Numeric(8, 2), server_default=sa.text("0") if n >= 5 else None),
    ]
    if n >= 9:
        book.append(sa.Column("pages", sa.BigInteger))
    book_items: list[sa.SchemaItem] = []
    if 2 <= n < 9:
        book_items.append(sa.Index("books_title_ix", "title"))
    if n >= 9:
        book_items.append(sa.Index("books_author_price_ix", "author_id", "price"))
    if n >= 7:
        book_items.append(sa.CheckConstraint("price >= 0", name="books_price_positive"))
    sa.Table(books, md, *book, *book_items)

    if 4 <= n < 10:
        sa.Table(
            "tags",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(40), nullable=False),
            sa.UniqueConstraint("label", name="tags_label_key"),
        )
        sa.Table(
            "book_tags",
            md,
            sa.Column("book_id", sa.Integer, sa.ForeignKey(f"{books}.id", name="book_tags_book_fk"), primary_key=True),
            sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id", name="book_tags_tag_fk"), primary_key=True),
        )
    if n >= 8:
        sa.Table(
            "loans",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("book_id", sa.Integer, sa.ForeignKey(f"{books}.id", name="loans_book_fk", ondelete="CASCADE")),
            sa.Column("borrower", sa.String(100), nullable=False),
            sa.Column("due", sa.DateTime),
            sa.Column("note", sa.Text),
        )
    return md


v1, v2, v3, v4, v5, v6, v7, v8, v9, v10 = (version(n) for n in range(1, 11))

HINTS: dict[int, list[str]] = {3: ["authors.mail=email"], 6: ["books=titles"]}
DESTRUCTIVE = {8, 9, 10}


# --------------------------------------------------------------------------- a blog, per dialect

BLOG_DIALECTS = ("postgresql", "mysql", "sqlite")
COLLATION = {"postgresql": "C", "mysql": "utf8mb4_bin", "sqlite": "NOCASE"}
"""A binary or case-blind collation each dialect has (collation names are the dialect's own)."""

BLOG_LACKS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(),
    # MariaDB: no partial or expression indexes, no deferrable constraints, no identity options (AUTO_INCREMENT
    # only), a primary key always named PRIMARY
    "mysql": frozenset({"partial_index", "expression_index", "deferrable", "identity_options", "pk_name"}),
    # SQLite: no native enum (the column stays a plain string), no identity options (INTEGER PRIMARY KEY)
    "sqlite": frozenset({"enum", "identity_options", "pk_name"}),
}
"""The features each dialect lacks: a blog's models for that dialect leave them out."""


def blog(dialect: str, n: int) -> sa.MetaData:
    """Version ``n`` (1-6) of a small blog's models, with what ``dialect`` lacks (BLOG_LACKS) left out.

    1 users, posts (identity, DateTime server defaults now()/CURRENT_TIMESTAMP, a collation, a named primary key)
    2 + posts.status (Enum), posts.meta (JSON), a partial index; tags and post_tags (a deferrable FK)
    3 + comments (a generated column), an expression index on lower(users.email)
    4 + posts.slug NOT NULL (rows filled with --default)
    5 users.name renamed display_name; posts.body made NOT NULL (NULL rows filled with --default)
    6 + 'archived' in the status enum; posts.meta dropped; the partial index dropped
    """
    lacks = BLOG_LACKS[dialect]
    md = sa.MetaData()
    name = "display_name" if n >= 5 else "name"
    identity = sa.Identity(start=1000) if "identity_options" not in lacks else None
    user_pk = sa.PrimaryKeyConstraint("id", name="users_primary") if "pk_name" not in lacks else None
    users = sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer, *([identity] if identity is not None else []), primary_key=user_pk is None),
        sa.Column("email", sa.String(120, collation=COLLATION[dialect]), nullable=False),
        sa.Column(name, sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now(), nullable=False),
        *([user_pk] if user_pk is not None else []),
    )
    if n >= 3 and "expression_index" not in lacks:
        sa.Index("users_email_lower_ix", sa.func.lower(users.c.email), unique=True)
    statuses = ["draft", "published", *(["archived"] if n >= 6 else [])]
    status: sa.types.TypeEngine[str] = sa.Enum(*statuses, name="post_status") if "enum" not in lacks else sa.String(20)
    post_columns: list[sa.SchemaItem] = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id", name="posts_author_fk"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=n < 5),
        sa.Column("published_at", sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP")),
    ]
    if n >= 2:
        post_columns.append(sa.Column("status", status, nullable=False, server_default="draft"))
    if 2 <= n < 6:
        post_columns.append(sa.Column("meta", sa.JSON))
    if n >= 4:
        post_columns.append(sa.Column("slug", sa.String(200), nullable=False))
    posts = sa.Table("posts", md, *post_columns)
    sa.Index("posts_author_ix", posts.c.author_id)
    if 2 <= n < 6 and "partial_index" not in lacks:
        sa.Index(
            "posts_published_ix",
            posts.c.published_at,
            postgresql_where=sa.text("status = 'published'"),
            sqlite_where=sa.text("status = 'published'"),
        )
    if n >= 2:
        sa.Table(
            "tags",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(40), nullable=False),
            sa.UniqueConstraint("label", name="tags_label_key"),
        )
        deferrable = {} if "deferrable" in lacks else {"deferrable": True, "initially": "DEFERRED"}
        sa.Table(
            "post_tags",
            md,
            sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", name="post_tags_post_fk"), primary_key=True),
            sa.Column(
                "tag_id", sa.Integer, sa.ForeignKey("tags.id", name="post_tags_tag_fk", **deferrable), primary_key=True
            ),
        )
    if n >= 3:
        sa.Table(
            "comments",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", name="comments_post_fk", ondelete="CASCADE")),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("upvotes", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("downvotes", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("score", sa.Integer, sa.Computed(sa.text("upvotes - downvotes"), persisted=True)),
            sa.Column("created_at", sa.DateTime, server_default=sa.func.current_timestamp(), nullable=False),
        )
    return md


BLOG_HINTS: dict[int, list[str]] = {5: ["users.name=display_name"]}
BLOG_FILLS: dict[int, list[str]] = {4: ["posts.slug='untitled'"], 5: ["posts.body=''"]}
BLOG_DESTRUCTIVE = {5, 6}


def __getattr__(attr: str) -> sa.MetaData:
    """``blog_<dialect>_v<n>``: what ``makemigrations --models tests.model_history:blog_mysql_v3`` reads."""
    parts = attr.split("_")
    if len(parts) == 3 and parts[0] == "blog" and parts[1] in BLOG_DIALECTS and parts[2][:1] == "v":
        return blog(parts[1], int(parts[2][1:]))
    raise AttributeError(attr)


# --------------------------------------------------------------------------- one-off values for existing rows


def notes(n: int) -> sa.MetaData:
    """v1: notes(id, title, body nullable); v2: + slug NOT NULL without a default (rows need a value), + rank
    NOT NULL with a server default (they have one), body made NOT NULL (its NULL rows need a value)."""
    md = sa.MetaData()
    columns = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=n < 2),
    ]
    if n >= 2:
        columns.append(sa.Column("slug", sa.String(100), nullable=False))
        columns.append(sa.Column("rank", sa.Integer, nullable=False, server_default=sa.text("0")))
    sa.Table("notes", md, *columns)
    return md


notes_v1, notes_v2 = notes(1), notes(2)
