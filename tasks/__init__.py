"""Pipeline stages: pure polars transformations, one module per stage."""
