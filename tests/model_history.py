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
