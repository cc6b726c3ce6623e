"""Placeholder: star bench latent (being written)."""


def add_arguments(parser):
    parser.add_argument("data")
    parser.add_argument("--model", default="default")


def run_bench_latent(args):
    raise NotImplementedError
