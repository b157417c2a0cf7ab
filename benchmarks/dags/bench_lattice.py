"""lattice: 10 layers x 10 nodes, each node takes the outputs of every node of the layer
before it; one sink sums the last layer (so both sides end on one checkable value)."""

from orchestrator import dag, task

LAYERS = 10
WIDTH = 10


def expected() -> int:
    v = 1  # layer 0: node() == 1; layer k: sum of WIDTH values of layer k-1, + 1
    for _ in range(LAYERS - 1):
        v = WIDTH * v + 1
    return WIDTH * v


EXPECTED = expected()


@task
def lattice_node(*xs: int) -> int:
    return sum(xs) + 1


@task
def lattice_sink(*xs: int) -> int:
    return sum(xs)


@dag(id="bench_lattice")
def bench_lattice() -> None:
    """Every layer is a full join of the layer before: 100 nodes, 900 data edges."""
    layer = [lattice_node() for _ in range(WIDTH)]
    for _ in range(LAYERS - 1):
        layer = [lattice_node(*layer) for _ in range(WIDTH)]
    lattice_sink(*layer)
