"""Deterministic convergence simulations that drive the real gossip core in virtual time."""

from simulations.engine import Simulation
from simulations.experiments import Setup, run_trial, run_trials, summarize
from simulations.network import NetworkModel
from simulations.scenarios import SCENARIOS, ScenarioFailed, Story

__all__ = ["SCENARIOS", "NetworkModel", "ScenarioFailed", "Setup", "Simulation", "Story",
           "run_trial", "run_trials", "summarize"]
