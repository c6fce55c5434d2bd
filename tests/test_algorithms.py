"""One list of algorithms: placements, experiments and answers use its names; older spellings are accepted."""
import pytest

from backend.algorithms import ALGORITHMS, ARM_CHOICES, HOLDOUT, NAMES, canonical, spellings
from backend.store.experiments import Arm, ExperimentError, validate_arms
from backend.store.placements import PlacementConfig, PlacementError


def test_every_algorithm_has_one_name_and_a_label():
    assert NAMES == ("gru4rec_next", "gru4rec_sequence", "gru4rec_blend", "item_to_item", "popular")
    assert all(a.label for a in ALGORITHMS) and ARM_CHOICES == NAMES + (HOLDOUT,)
    assert all(canonical(s) in ARM_CHOICES for s in spellings())


@pytest.mark.parametrize("old,new", [("gru4rec", "gru4rec_next"), ("gru4rec-next", "gru4rec_next"),
                                     ("item-knn", "item_to_item"), ("item-to-item", "item_to_item"),
                                     ("gru4rec-sequence", "gru4rec_sequence"), ("gru4rec-blend", "gru4rec_blend"),
                                     ("popular", "popular")])
def test_older_spellings_are_stored_under_the_name(old, new):
    assert PlacementConfig("next", algorithm=old).validated().algorithm == new
    arms = validate_arms([Arm("a", "popular"), Arm("b", old)])
    assert arms[1].algorithm == new


@pytest.mark.parametrize("bad", ["", "GRU4Rec", "knn", None, 3])
def test_unknown_algorithms_are_refused(bad):
    assert canonical(bad) is None
    with pytest.raises(PlacementError, match="algorithm: must be one of gru4rec_next"):
        PlacementConfig("next", algorithm=bad).validated()
    with pytest.raises(ExperimentError, match="algorithm must be one of"):
        validate_arms([Arm("a", "popular"), Arm("b", bad)])


def test_holdout_is_an_arm_but_not_a_placement_algorithm():
    assert validate_arms([Arm("a", "popular"), Arm("b", HOLDOUT)])[1].algorithm == HOLDOUT
    with pytest.raises(PlacementError):
        PlacementConfig("next", algorithm=HOLDOUT).validated()
