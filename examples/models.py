"""The SQLAlchemy models of the README's tour: the users of examples/first-changeset.json, with a nick."""

from sqlalchemy import BigInteger, Identity, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("users_email_key", "email", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(255))
    nick: Mapped[str | None] = mapped_column(String(64))
