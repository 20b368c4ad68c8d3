"""The shop's ordinary SQLAlchemy tables."""

from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, Table, Text, func

metadata = MetaData()

websites = Table(
    "websites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("summary", Text),
    Column("sentiment", Numeric(4, 3)),
    Column("analyzed_at", DateTime(timezone=True), server_default=func.now()),
)
