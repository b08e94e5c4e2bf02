-- The latest revision of every order intake has seen, and what intake decided about it.
CREATE TABLE orders (
    order_id    text PRIMARY KEY,
    revision    integer NOT NULL,
    status      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
