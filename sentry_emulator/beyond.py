"""The data and knobs of the endpoints beyond errors: release health (sessions), Explore
(organization events) and replays. The handlers are in `api_beyond.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .dataset import Dataset
from .explore import DATASETS, ExploreData
from .health import HealthData
from .peers import PeerData
from .replays import ReplayData

__all__ = ["Beyond"]


@dataclass
class Beyond:
    health: HealthData
    explore: ExploreData
    replays: ReplayData
    peers: PeerData  # the tables of issue 21 (api_peers.py)
    sessions_max_points: int = 10_000  # most data points (groups x intervals) a sessions answer holds
    explore_max_offset: int = 10_000  # an Explore request from this offset on is a 400
    explore_full_fidelity_days: float = 30  # Explore samples queries starting further back
    explore_datasets: tuple[str, ...] = DATASETS  # the Explore datasets served (others are a 400)

    @classmethod
    def build(cls, ds: Dataset, *, sessions_max_points: int = 10_000,
              explore_rows_per_hour: Mapping[str, int] | None = None, explore_max_offset: int = 10_000,
              explore_full_fidelity_days: float = 30, replays_per_hour: int = 2,
              explore_datasets: Iterable[str] | None = None) -> Beyond:
        served = DATASETS if explore_datasets is None else tuple(d for d in DATASETS if d in set(explore_datasets))
        unknown = set(explore_datasets or ()) - set(DATASETS)
        if unknown:
            raise ValueError(f"explore_datasets: no such dataset {sorted(unknown)} (there are {', '.join(DATASETS)})")
        return cls(HealthData(ds), ExploreData(ds, explore_rows_per_hour), ReplayData(ds, replays_per_hour),
                   PeerData(ds), int(sessions_max_points), int(explore_max_offset), float(explore_full_fidelity_days),
                   served)
