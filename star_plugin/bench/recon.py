"""Placeholder: star bench recon (being written)."""


def add_arguments(parser):
    parser.add_argument("data")
    parser.add_argument("--model", default="default")


def run_bench_recon(args):
    raise NotImplementedError
