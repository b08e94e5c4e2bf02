-- What the funnel report (services/support/funnel.py) needs of each order: when it was
-- first submitted, its card type, when it was first PRODUCED. One row per order (not per
-- revision), kept by support's stage from order.submitted, order.status and card.produced.
CREATE TABLE order_funnel (
    order_id            text PRIMARY KEY,
    -- The earliest order.submitted of the order (the portal's time), and the earliest
    -- status of it support saw (the stand-in when the submission was never seen).
    submitted_at        timestamptz,
    first_status_at     timestamptz,
    first_submitted_at  timestamptz GENERATED ALWAYS AS (COALESCE(submitted_at, first_status_at)) STORED,
    card_type           text CHECK (card_type IN ('construction', 'cleaning')),
    produced_at         timestamptz,  -- the first PRODUCED status
    CHECK (submitted_at IS NOT NULL OR first_status_at IS NOT NULL)
);
CREATE INDEX order_funnel_month ON order_funnel (first_submitted_at);

-- The orders projected before this table: the latest revision's submission time stands
-- in for the first (older revisions' times were not kept).
INSERT INTO order_funnel (order_id, submitted_at, first_status_at, card_type, produced_at)
SELECT
    COALESCE(o.order_id, d.order_id),
    d.submitted_at,
    COALESCE(
        (SELECT min(t.occurred_at) FROM timeline t WHERE t.order_id = o.order_id), o.first_seen
    ),
    CASE WHEN d.card_type IN ('construction', 'cleaning') THEN d.card_type END,
    (SELECT min(t.occurred_at) FROM timeline t
      WHERE t.order_id = o.order_id AND t.status = 'PRODUCED')
FROM orders o FULL JOIN order_details d ON d.order_id = o.order_id
WHERE d.submitted_at IS NOT NULL OR o.first_seen IS NOT NULL;
