"""Helpers for the tests and benchmarks: tiny seeded components in the released layout
(`tiny_models`) and a plain, obviously-correct implementation of the attention to check the fast
one against (`plain_reference`). Not used by the pipeline itself."""
