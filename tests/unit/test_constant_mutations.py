"""The hand-made constant mutations of `make mutate` still apply to the code as it is now."""

import pytest

from tests.constant_mutations import MUTATIONS, ROOT


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[f"{number}" for number in range(len(MUTATIONS))])
def test_each_mutation_changes_one_place_of_code_that_still_compiles(mutation):
    source = (ROOT / mutation.path).read_text()
    assert source.count(mutation.old) == 1, f"{mutation.old!r} is not once in {mutation.path}: update the table"
    assert mutation.new != mutation.old
    compile(source.replace(mutation.old, mutation.new), mutation.path, "exec")
    assert (ROOT / mutation.tests).is_file()


def test_no_mutation_is_listed_twice():
    assert len({(mutation.path, mutation.old, mutation.new) for mutation in MUTATIONS}) == len(MUTATIONS)
