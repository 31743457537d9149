"""Each supported database takes a real round trip through SQLAlchemy."""

from sqlalchemy import Column, Integer, MetaData, Numeric, String, Table, create_engine, select


def test_round_trip(database_url: str) -> None:
    metadata = MetaData()
    usage = Table(
        "harness_round_trip",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user", String(64), nullable=False),
        Column("core_hours", Numeric(20, 6), nullable=False),
    )
    engine = create_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(usage.insert(), [{"user": "alice", "core_hours": "0.250000"}])
        with engine.connect() as conn:
            row = conn.execute(select(usage.c.user, usage.c.core_hours)).one()
        assert row.user == "alice"
        assert str(row.core_hours) == "0.250000"
        assert engine.dialect.name in {"sqlite", "postgresql", "mysql", "mariadb"}
    finally:
        metadata.drop_all(engine)
        engine.dispose()
