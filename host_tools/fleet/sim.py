"""A fleet on Flower's simulation engine: every client a virtual SuperNode on this machine."""
import json
import logging
import os
from pathlib import Path

from host_tools.fleet import data as fdata
from host_tools.fleet.apps import ENV, FleetConfig
from host_tools.fleet.board import stop_leftovers


def run(cfg: FleetConfig, config_path, cpus=2, verbose=False) -> dict:
    """Run the fleet of cfg (its split's clients) and return the server's history (cfg.result)."""
    from flwr.clientapp import ClientApp  # noqa: F401  (Flower first: a clear ImportError)
    from flwr.simulation import run_simulation
    from host_tools.fleet.apps import client_app, server_app
    cfg.save(config_path)
    os.environ[ENV] = str(Path(config_path).resolve())
    n = fdata.load(cfg.data).n_clients
    Path(cfg.result).unlink(missing_ok=True)
    if not verbose:
        logging.getLogger("flwr").setLevel(logging.WARNING)
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False,
                             "object_store_memory": 100 * 2 ** 20, "logging_level": "error",
                             "log_to_driver": verbose}}
    try:
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=n,
                       backend_config=backend, verbose_logging=verbose)
    finally:
        stop_leftovers(cfg.workdir)
    if not Path(cfg.result).is_file():
        raise RuntimeError("the fleet's server wrote no result: see Flower's log above")
    return json.loads(Path(cfg.result).read_text())
