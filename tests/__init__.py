import pytest

# Helpers that assert, outside test modules: pytest rewrites their asserts too.
pytest.register_assert_rewrite("tests.hook_checks", "tests.support")
