-- How often support replayed an order at this stage (shared/replays.py): the count is per
-- revision, so a replay past the limit (KORTFLYT_REPLAY_LIMIT) is refused.
CREATE TABLE IF NOT EXISTS replays (
    order_id    text PRIMARY KEY,
    revision    integer NOT NULL,
    replays     integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
