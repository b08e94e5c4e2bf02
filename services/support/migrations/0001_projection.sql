-- support's projection of hmskort.order.status.v1: every order's latest status, and its
-- timeline (every status change, once each), for `kortflyt orders list|show|replay`.
CREATE TABLE orders (
    order_id      text PRIMARY KEY,
    revision      integer NOT NULL,
    status        text NOT NULL,
    stage         text NOT NULL,
    reasons       jsonb NOT NULL DEFAULT '[]'::jsonb,
    reason_codes  text[] NOT NULL DEFAULT '{}',
    card_number   text,
    first_seen    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL  -- when the latest status occurred
);
CREATE INDEX orders_status ON orders (status, updated_at);
CREATE INDEX orders_updated ON orders (updated_at);
CREATE INDEX orders_reason_codes ON orders USING gin (reason_codes);

CREATE TABLE timeline (
    event_id     uuid PRIMARY KEY,
    order_id     text NOT NULL,
    revision     integer NOT NULL,
    status       text NOT NULL,
    stage        text NOT NULL,
    reasons      jsonb NOT NULL DEFAULT '[]'::jsonb,
    card_number  text,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timeline_order ON timeline (order_id, occurred_at);
