"""Every loss against values computed by hand from its formula.

The worked example of the first source (Du et al. 2021, Sec. II-III): one minority sample
(label 1) at true-class probability 0.4 and three majority samples (label 0) at 0.8, 0.7, 0.4;
then either the last majority or the minority probability is raised to 0.9. The paper prints
*un-normalised sums in log base 10*, so each paper value is compared with

    paper = ours / ln(10) * normaliser

where ``normaliser`` undoes our mean-style reduction: N = 4 for the sample means (CE, FL), the
weight total ``sum_i alpha_{y_i} = 1 + 3 * (1/3) = 2`` for the weighted means (WCE, FL(alpha)),
and 1 for PF (the paper's PF already divides by M = 2). The paper rounds its printed values
(sometimes from rounded terms: PF_ma = 0.199 + 0.0485 = 0.2475 against the exact 0.24742), so the
tolerance is one unit of the last printed digit.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from imbloss.errors import ConfigError
from imbloss.losses import build_loss
from imbloss.losses.ldam import ldam_margins
from imbloss.losses.weights import (
    below_mean_count,
    effective_number_weights,
    inverse_frequency_weights,
)

LN10 = math.log(10.0)
EXAMPLE_COUNTS = [3, 1]  # class 0: three majority samples, class 1: one minority sample
EXAMPLE_TARGET = torch.tensor([1, 0, 0, 0])
EXAMPLE_PROBS = {  # true-class probabilities: minority first, then the three majority samples
    "k": [0.4, 0.8, 0.7, 0.4],
    "ma": [0.4, 0.8, 0.7, 0.9],
    "mi": [0.9, 0.8, 0.7, 0.4],
}


def two_class_logits(true_probs: list[float], target: torch.Tensor) -> torch.Tensor:
    """Logits [N, 2] whose softmax gives each sample its true-class probability.

    A sample of label y with probability p gets log p at column y and log(1 - p) at the other.
    """
    p = torch.tensor(true_probs, dtype=torch.float64)
    true_col, other_col = torch.log(p), torch.log1p(-p)
    label_one = target.bool()
    return torch.stack(
        [torch.where(label_one, other_col, true_col), torch.where(label_one, true_col, other_col)],
        dim=1,
    )


def example_loss(name: str, case: str) -> float:
    logits = two_class_logits(EXAMPLE_PROBS[case], EXAMPLE_TARGET)
    return build_loss(name, class_counts=EXAMPLE_COUNTS)(logits, EXAMPLE_TARGET).item()


# (registry name, paper's name, normaliser, {case: printed value})
PAPER_EXAMPLE = [
    ("ce", "CE, Sec. II-A", 4, {"k": 1.05, "ma": 0.70, "mi": 0.70}),
    ("wce", "WCE, Sec. II-B", 2, {"k": 0.615, "ma": 0.497, "mi": 0.262}),
    ("focal", "FL, Sec. II-C", 4, {"k": 0.304, "ma": 0.162, "mi": 0.162}),
    ("focal_alpha", "FL(alpha), Sec. II-C", 2, {"k": 0.197, "ma": 0.149, "mi": 0.054}),
    ("pf", "PF, Sec. III-A", 1, {"k": 0.298, "ma": 0.2475, "mi": 0.122}),
]


def last_digit_unit(printed: float) -> float:
    decimals = len(repr(printed).split(".")[1])
    return 10.0**-decimals


@pytest.mark.parametrize(("name", "paper_name", "normaliser", "printed"), PAPER_EXAMPLE)
def test_worked_example_matches_the_papers_printed_values(
    name: str, paper_name: str, normaliser: int, printed: dict[str, float]
) -> None:
    for case, value in printed.items():
        ours_as_paper = example_loss(name, case) / LN10 * normaliser
        assert ours_as_paper == pytest.approx(value, abs=last_digit_unit(value)), (paper_name, case)


@pytest.mark.parametrize("name", ["wce", "focal_alpha", "pf"])
def test_worked_example_minority_gain_exceeds_majority_gain(name: str) -> None:
    """The paper's argument: raising the minority probability lowers the loss more."""
    k, ma, mi = (example_loss(name, case) for case in ("k", "ma", "mi"))
    assert abs(k - ma) < abs(k - mi)


@pytest.mark.parametrize("name", ["ce", "focal"])
def test_worked_example_sample_losses_do_not_prefer_the_minority(name: str) -> None:
    """CE and FL (gamma = 2) fall by the same amount whichever sample is raised (0.4 -> 0.9)."""
    assert example_loss(name, "ma") == pytest.approx(example_loss(name, "mi"), rel=1e-12)


def test_pf_worked_example_exact_natural_log() -> None:
    """PF^k = -(1/2) ln 0.4 - (1/2) ln((0.8 + 0.7 + 0.4) / 3)."""
    expected = -0.5 * math.log(0.4) - 0.5 * math.log(1.9 / 3)
    assert example_loss("pf", "k") == pytest.approx(expected, rel=1e-12)


def test_pfh_sets_probabilities_above_half_to_one_without_gradient() -> None:
    """PFH^k: 0.8 and 0.7 become 1, so q_0 = (1 + 1 + 0.4)/3 = 0.8, q_1 = 0.4 (Sec. III-E)."""
    logits = two_class_logits(EXAMPLE_PROBS["k"], EXAMPLE_TARGET).requires_grad_()
    value = build_loss("pfh", class_counts=EXAMPLE_COUNTS)(logits, EXAMPLE_TARGET)
    assert value.item() == pytest.approx(-0.5 * (math.log(0.4) + math.log(0.8)), rel=1e-12)
    value.backward()
    assert torch.count_nonzero(logits.grad[[1, 2]]) == 0  # the samples at 0.8 and 0.7
    assert torch.count_nonzero(logits.grad[[0, 3]]) == 4  # the samples at 0.4


def test_pf_counts_absent_classes_in_m_with_a_zero_term() -> None:
    """C = 3, class 2 absent: PF = -(1/3)(ln q_0 + ln q_1 + 0).

    softmax(ln 2, 0, 0) = (1/2, 1/4, 1/4) and softmax(0, ln 2, 0) = (1/4, 1/2, 1/4), so the two
    class-0 samples give q_0 = (1/2 + 1/4)/2 and the class-1 sample q_1 = 1/4.
    """
    ln2 = math.log(2.0)
    logits = torch.tensor([[ln2, 0.0, 0.0], [0.0, ln2, 0.0], [ln2, 0.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 0, 1])
    value = build_loss("pf", class_counts=[10, 5, 1])(logits, target).item()
    assert value == pytest.approx(-(math.log(0.375) + math.log(0.25)) / 3, rel=1e-12)


def test_squared_error_losses_on_the_worked_example() -> None:
    """Two classes: e_i = (1/2)((1-p)^2 + (1-p)^2) = (1-p)^2 -> 0.36 (minority); 0.04, 0.09, 0.36.

    mse = (0.36 + 0.04 + 0.09 + 0.36)/4; mfe = FNE + FPE = 0.36 + 0.49/3;
    msfe = FNE^2 + FPE^2 = 0.36^2 + (0.49/3)^2.
    """
    assert example_loss("mse", "k") == pytest.approx(0.85 / 4, rel=1e-12)
    assert example_loss("mfe", "k") == pytest.approx(0.36 + 0.49 / 3, rel=1e-12)
    assert example_loss("msfe", "k") == pytest.approx(0.36**2 + (0.49 / 3) ** 2, rel=1e-12)


def test_msfe_is_half_of_squared_sum_plus_squared_difference() -> None:
    """Second source: l'' = FPE^2 + FNE^2 = ((FPE + FNE)^2 + (FPE - FNE)^2) / 2."""
    fne, fpe = 0.36, 0.49 / 3
    assert example_loss("msfe", "k") == pytest.approx(((fpe + fne) ** 2 + (fpe - fne) ** 2) / 2)


def test_squared_error_losses_with_three_classes_and_an_absent_class() -> None:
    """softmax(0, ln 2, 0) = (1/4, 1/2, 1/4). Label 1: e = (1/2)(1/16 + 1/4 + 1/16) = 3/16;
    label 0: e = (1/2)(9/16 + 1/4 + 1/16) = 7/16. Class 2 is absent and adds nothing.
    """
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]] * 3, dtype=torch.float64)
    target = torch.tensor([1, 1, 0])
    assert build_loss("mse", [5, 5, 5])(logits, target).item() == pytest.approx(13 / 48)
    assert build_loss("mfe", [5, 5, 5])(logits, target).item() == pytest.approx(3 / 16 + 7 / 16)
    expected_msfe = (3 / 16) ** 2 + (7 / 16) ** 2
    assert build_loss("msfe", [5, 5, 5])(logits, target).item() == pytest.approx(expected_msfe)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits = torch.randn(64, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.arange(64) % 10
    counts = [50] * 5 + [5] * 5
    focal = build_loss("focal", counts, gamma=0.0)(logits, target)
    torch.testing.assert_close(focal, build_loss("ce", counts)(logits, target), rtol=1e-14, atol=0)
    focal_alpha = build_loss("focal_alpha", counts, gamma=0.0, scale=3.0)(logits, target)
    wce = build_loss("wce", counts, scale=3.0)(logits, target)
    torch.testing.assert_close(focal_alpha, wce, rtol=1e-14, atol=0)


def test_focal_single_sample() -> None:
    """p = 1/4, gamma = 2: -(3/4)^2 ln(1/4)."""
    logits = torch.tensor([[math.log(3.0), 0.0]])
    value = build_loss("focal", [1, 1], gamma=2.0)(logits, torch.tensor([1])).item()
    assert value == pytest.approx(-(0.75**2) * math.log(0.25), rel=1e-6)


def test_inverse_frequency_weights_scale_only_classes_below_the_mean_count() -> None:
    """Counts (10, 10, 1, 5), mean 6.5: classes 2 and 3 are minority."""
    counts = [10, 10, 1, 5]
    assert below_mean_count(counts).tolist() == [False, False, True, True]
    weights = inverse_frequency_weights(counts, 0.5)
    torch.testing.assert_close(weights, torch.tensor([0.1, 0.1, 0.5, 0.1]))


def test_wce_weighted_mean_with_minority_scale() -> None:
    """Counts (3, 1), scale 2: alpha = (1/3, 2); p = (0.5 [label 0], 0.2 [label 1]).

    WCE = -((1/3) ln 0.5 + 2 ln 0.2) / (1/3 + 2).
    """
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.8, 0.2]], dtype=torch.float64))
    value = build_loss("wce", [3, 1], scale=2.0)(logits, torch.tensor([0, 1])).item()
    assert value == pytest.approx(-(math.log(0.5) / 3 + 2 * math.log(0.2)) / (7 / 3), rel=1e-6)


def test_effective_number_weights_by_hand() -> None:
    """beta = 0.5, counts (1, 2): (0.5/0.5, 0.5/0.75) = (1, 2/3), sum 5/3 -> times 2/(5/3)."""
    torch.testing.assert_close(effective_number_weights([1, 2], 0.5), torch.tensor([1.2, 0.8]))
    torch.testing.assert_close(effective_number_weights([7, 300, 2], 0.0), torch.ones(3))


def test_class_balanced_cross_entropy_by_hand() -> None:
    """cb, counts (1, 2), beta 0.5: weights (1.2, 0.8); p = 0.5 (label 0), 0.2 (label 1)."""
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.8, 0.2]], dtype=torch.float64))
    value = build_loss("cb", [1, 2], beta=0.5)(logits, torch.tensor([0, 1])).item()
    assert value == pytest.approx(-(1.2 * math.log(0.5) + 0.8 * math.log(0.2)) / 2.0, rel=1e-6)


def test_ldam_margins_and_value_by_hand() -> None:
    """Counts (16, 1): N^(-1/4) = (1/2, 1), so max_m 0.5 gives margins (0.25, 0.5).

    s = 2, logits [1, 0] (label 0) and [0, 1] (label 1) become 2*[0.75, 0] and 2*[0, 0.5]:
    CE = softplus(-1.5) and softplus(-1).
    """
    torch.testing.assert_close(ldam_margins([16, 1], 0.5), torch.tensor([0.25, 0.5]))
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    value = build_loss("ldam", [16, 1], max_m=0.5, s=2.0)(logits, torch.tensor([0, 1])).item()
    expected = (math.log1p(math.exp(-1.5)) + math.log1p(math.exp(-1.0))) / 2
    assert value == pytest.approx(expected, rel=1e-6)


def test_logit_adjusted_by_hand() -> None:
    """Counts (1, 3), zero logits, label 0: tau = 1 -> softmax of log prior -> p = 1/4;
    tau = 2 -> softmax proportional to (1/16, 9/16) -> p = 1/10.
    """
    logits, target = torch.zeros(1, 2), torch.tensor([0])
    assert build_loss("la", [1, 3])(logits, target).item() == pytest.approx(math.log(4.0))
    assert build_loss("la", [1, 3], tau=2.0)(logits, target).item() == pytest.approx(math.log(10))
    assert build_loss("la", [1, 3], tau=0.0)(logits, target).item() == pytest.approx(math.log(2))


def test_balanced_softmax_is_cross_entropy_on_logits_plus_log_counts_and_la_with_tau_one() -> None:
    counts = [500, 50, 5, 1]
    logits = torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    target = torch.arange(16) % 4
    direct = F.cross_entropy(logits + torch.log(torch.tensor(counts, dtype=torch.float64)), target)
    bsm = build_loss("bsm", counts)(logits, target)
    torch.testing.assert_close(bsm, direct, rtol=1e-6, atol=0)
    torch.testing.assert_close(bsm, build_loss("la", counts, tau=1.0)(logits, target))


# Three samples, labels (0, 0, 1): p = 3/4, 1/2, 3/4, so l = (ln 4/3, ln 2, ln 4/3).
REDUCTION_LOGITS = torch.log(
    torch.tensor([[3.0, 1.0], [1.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
)
REDUCTION_TARGET = torch.tensor([0, 0, 1])
L43, L2 = math.log(4 / 3), math.log(2)


@pytest.mark.parametrize(
    ("name", "hparams", "weights"),
    [
        ("wce", {}, (1 / 3, 1.0)),  # counts (3, 1): alpha = (1/3, 1); as C-normalised (1/2, 3/2)
        ("cb", {"beta": 0.5}, (8 / 11, 14 / 11)),  # (0.5/0.875, 0.5/0.5) = (4/7, 1), sum C = 2
    ],
)
def test_weighted_mean_and_mean_reductions_by_hand(name, hparams, weights) -> None:
    w0, w1 = weights
    weighted = build_loss(name, [3, 1], **hparams)(REDUCTION_LOGITS, REDUCTION_TARGET).item()
    assert weighted == pytest.approx((w0 * L43 + w0 * L2 + w1 * L43) / (2 * w0 + w1), rel=1e-6)
    mean = build_loss(name, [3, 1], reduction="mean", **hparams)
    c0, c1 = 2 * w0 / (w0 + w1), 2 * w1 / (w0 + w1)  # the weights rescaled to sum to C = 2
    expected = (c0 * L43 + c0 * L2 + c1 * L43) / 3  # divided by N = 3, not by the weight total
    assert mean(REDUCTION_LOGITS, REDUCTION_TARGET).item() == pytest.approx(expected, rel=1e-6)
    # per batch the two differ by N / sum_i w_i (C-normalised weights): here 3 / (2 c0 + c1)
    assert mean(REDUCTION_LOGITS, REDUCTION_TARGET).item() == pytest.approx(
        weighted * (2 * c0 + c1) / 3, rel=1e-6
    )


def test_an_unknown_reduction_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"reduction='sum' is invalid; accepted: weighted_mean, mean"
    ):
        build_loss("cb", [3, 1], reduction="sum")
