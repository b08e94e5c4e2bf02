-- The latest revision of every order registry_check has checked, and the outcome.
CREATE TABLE checked_orders (
    order_id    text PRIMARY KEY,
    revision    integer NOT NULL,
    status      text NOT NULL,
    checks      jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
