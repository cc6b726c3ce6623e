"""Placeholder: the corpus builder (being written)."""


def add_arguments(parser):
    parser.add_argument("--out", required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)


def run_build(args):
    raise NotImplementedError
