-- intake's state per order: 'NEW' is a placeholder row that serialises concurrent work.
ALTER TABLE orders ALTER COLUMN revision SET DEFAULT 0;

-- The documents intake stored for an order revision. ID copies are deleted (deleted_at)
-- once the order reaches a closed status; photos stay for the card.
CREATE TABLE documents (
    order_id    text NOT NULL,
    revision    integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('photo', 'id_copy')),
    blob_key    text NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (order_id, revision, kind)
);
