"""The ``star`` commands, one module each: ``add_arguments(parser)`` and ``run(args)``.

``star_plugin.cli`` is the table that names them (and the tool modules whose commands live
with the tool: ``star bench ...``, ``star data build``, ``star studio``). These modules
import only argparse and light helpers at module level; every model, torch or tool import
happens inside ``run``, so building the parser stays fast (``benchmarks/cli_startup.md``).
"""
