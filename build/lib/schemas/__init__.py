"""marshmallow request and response schemas, one module per consumer."""
