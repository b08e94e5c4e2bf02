-- The projected statuses are the contract's (shared.events.Status): the tables say so.
-- Every row came from a parsed order.status event, so every existing row satisfies it.
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'RECEIVED', 'DOCUMENTS_REJECTED', 'ACCEPTED', 'CHECKING', 'AWAITING_REGISTER', 'APPROVED',
    'REJECTED', 'NEEDS_ATTENTION', 'IN_PRODUCTION', 'PRODUCED', 'CANCELLED'
));
ALTER TABLE timeline ADD CONSTRAINT timeline_status_check CHECK (status IN (
    'RECEIVED', 'DOCUMENTS_REJECTED', 'ACCEPTED', 'CHECKING', 'AWAITING_REGISTER', 'APPROVED',
    'REJECTED', 'NEEDS_ATTENTION', 'IN_PRODUCTION', 'PRODUCED', 'CANCELLED'
));
