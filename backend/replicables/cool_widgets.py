"""Cool Widgets: the first replicable blob type of Geo Console.

The whole declaration: the model on the primary with its verification
state in a `cool_widget_states` table (template option 2), the registry on
secondaries and the replicator. The tables are created by the migrations
`primary/0001` and `tracking/0001`.
"""
from __future__ import annotations

from backend.db.base import PrimaryBase, TrackingBase
from backend.framework.columns import make_blob_model, make_registry_model, make_state_model
from backend.framework.replicator import Replicator, VerificationStorage, register

CoolWidget = make_blob_model(PrimaryBase, "CoolWidget", "cool_widgets",
                             verification_on_model=False)
CoolWidgetState = make_state_model(PrimaryBase, "cool_widget", "cool_widgets")
CoolWidgetRegistry = make_registry_model(TrackingBase, "cool_widget")


@register
class CoolWidgetReplicator(Replicator):
    model = CoolWidget
    registry = CoolWidgetRegistry
    verification = VerificationStorage.state_table(CoolWidgetState, key="cool_widget_id")
    # A widget's file never changes after upload (there is no `updated` event),
    # so a `created` event leaves an existing registry as it is.
    mutable = False
    since = "0.1"
