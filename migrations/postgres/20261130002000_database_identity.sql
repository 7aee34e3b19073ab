-- The database's identity: one row, its id made by the gateway on first start. The usage
-- journal records it, so rows journaled for one database are never replayed into another.
CREATE TABLE gateway_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    database_id TEXT NOT NULL
);
