"""The sqlite dialect: introspect.py (the live schema), ddl.py (its statements), target.py (its
connection, lock and marker)."""
