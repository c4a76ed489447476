"""``infwide.keywords.reject_unknown``: the message names every unknown keyword and says why."""
import pytest

from infwide.keywords import reject_unknown


def test_known_keywords_pass():
    reject_unknown("f", {})
    reject_unknown("f", {"rng": 0}, ("rng",))


def test_every_unknown_keyword_is_named_with_what_is_accepted():
    with pytest.raises(TypeError) as e:
        reject_unknown("apply_fn", {"rng": 0, "zeta": 1, "alpha": 2}, ("rng",))
    msg = str(e.value)
    assert msg.startswith("apply_fn: unknown keyword argument(s) 'alpha', 'zeta';")
    assert "it accepts 'rng'" in msg and "'rng'," not in msg


def test_a_typo_of_a_hyper_parameter_points_to_the_constructor():
    with pytest.raises(TypeError, match="W_stdd.*go to the layer's constructor"):
        reject_unknown("kernel_fn", {"W_stdd": 2})


def test_nt_keywords_say_why_they_are_not_taken():
    with pytest.raises(TypeError, match="'mode'.*stax.Dropout\\(rate, mode='test'\\)"):
        reject_unknown("apply_fn", {"mode": "test"}, ("rng",))
