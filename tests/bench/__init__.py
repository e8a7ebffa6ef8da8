"""`make bench`: measured figures for the run engine, the intake, tenant isolation and the vault.

Benchmark code lives here, out of the product; files are named bench_*.py so pytest never
collects them. Run with `.venv/bin/python -m tests.bench [--quick]`.
"""
