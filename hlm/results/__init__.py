"""Result files: writers (atomic, deterministic JSON, text and parquet) and records (the
layouts the workflow writes and the report reads).
"""
