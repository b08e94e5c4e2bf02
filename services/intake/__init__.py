"""intake: validates submitted orders (fields, identifiers) and accepts or rejects them."""
