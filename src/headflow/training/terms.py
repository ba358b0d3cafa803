"""Named loss terms: weighting by name, the check that weights and terms match, the R1 penalty."""

from __future__ import annotations

import torch


def r1_penalty(real: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty: the batch mean of ||d D(x) / d x||^2 at real samples x.

    Mescheder et al. 2018 ("Which training methods for GANs do actually converge?", eq. 9) without
    the gamma / 2 factor, which comes in as `loss_weights["r1"]`; StyleGAN2's `training/loss.py`
    computes the same sum of squares over (c, h, w) per sample.

    Args:
        real: Float[Tensor, "b ..."] the real inputs D saw, with `requires_grad=True`.
        logits: D's outputs on them, any shape with batch first (summed: each sample's logit depends
            only on its own input).

    Returns:
        A scalar tensor that keeps the graph (create_graph) so it can be backpropagated into D.

    Raises:
        ValueError: if `real` does not require grad (the family forgot `requires_grad_()`).
    """
    if not real.requires_grad:
        raise ValueError("d_real_logits must return real inputs made to require grad before D saw them "
                         "(real = real.detach().requires_grad_(True)); got a tensor without grad")
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def weighted_sum(kind: str, terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """sum(weights[name] * term) over `terms` (what `kind`, e.g. "g_losses", returned).

    Raises:
        TypeError: `terms` is not a non-empty dict.
        ValueError: a term without a weight (naming the terms returned and the weights given), or
            a term that is not a scalar tensor.
    """
    if not isinstance(terms, dict) or not terms:
        raise TypeError(f"{kind} must return a non-empty dict of named scalar loss terms, got {type(terms).__name__}")
    unknown = set(terms) - set(weights)
    if unknown:
        raise ValueError(f"{kind} returned terms without a weight: {sorted(unknown)}; terms returned "
                         f"{sorted(terms)}, loss_weights names {sorted(weights)}")
    total = None
    for name, term in terms.items():
        if not isinstance(term, torch.Tensor) or term.ndim != 0:
            raise ValueError(f"{kind} term {name!r} must be a scalar tensor, got "
                             f"{tuple(term.shape) if isinstance(term, torch.Tensor) else type(term).__name__}")
        part = weights[name] * term
        total = part if total is None else total + part
    return total


def check_all_weighted(seen: set[str], weights: dict[str, float], reserved: tuple[str, ...] = ()) -> None:
    """Raise unless `weights` names exactly the terms `seen` and no term uses a `reserved` name."""
    if seen != set(weights):
        raise ValueError(f"loss_weights must name exactly the loss terms: terms returned {sorted(seen)}, "
                         f"loss_weights names {sorted(weights)} (weights without a term: "
                         f"{sorted(set(weights) - seen)}; terms without a weight: {sorted(seen - set(weights))})")
    clash = seen & set(reserved)
    if clash:
        raise ValueError(f"loss term names {sorted(clash)} clash with the history fields {list(reserved)}; rename them")
