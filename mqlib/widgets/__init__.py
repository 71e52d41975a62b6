"""ipywidgets + bqplot views over the scenarios. A view draws what its scenario reports and turns
button clicks into scenario method calls; it holds no messaging logic of its own."""

from .order_flow import SyncVsAsync
from .point_to_point import PointToPoint

__all__ = ["PointToPoint", "SyncVsAsync"]
