-- An order's status is the contract's (shared.events.Status): the table says so. Every
-- row came from a parsed order.status event or is an accepted order's 'ACCEPTED', so
-- every existing row satisfies it.
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'RECEIVED', 'DOCUMENTS_REJECTED', 'ACCEPTED', 'CHECKING', 'AWAITING_REGISTER', 'APPROVED',
    'REJECTED', 'NEEDS_ATTENTION', 'IN_PRODUCTION', 'PRODUCED', 'CANCELLED'
));
