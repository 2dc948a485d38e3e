"""The binned likelihood behind the limits, profiled exactly at any yield (HistFactory semantics).

For bins k and nuisance parameters alpha_j (a few) and gamma_k = 1 + delta_k (one per bin):

    n_k    ~ Poisson(lambda_k),  lambda_k = mu s_k S_k(alpha) + gamma_k b_k B_k(alpha)
    gamma_k ~ Gaussian(1, 1 / sqrt(tau_k)),  tau_k = b_k^2 / sumw2_k     (MC statistics: pyhf's staterror;
                                                                          tau_k is the bin's N_eff), gamma_k >= 0
    alpha_j ~ Gaussian(0, 1),   S_k = prod_j kappa^S_jk ** alpha_j, B_k likewise  (pyhf's normsys with
                                                                          hi = kappa, lo = 1 / kappa, code1)

:func:`pyhf_model` builds the same model in pyhf (one channel per bin), and the tests compare the two.

Why not pyhf's own fits: on data with 1e7-1e11 events per bin its minimisers stop early (the
negative log-likelihood is a difference of terms of size n ln n, and finite-difference gradients
drown in its rounding), and the limit lands on one of two answers depending on the starting point
(up to 1.43x off). Here the deviance is computed relative to the best fit, in a form without such
cancellations (n h(x), h(x) = x - ln(1 + x), x = (lambda - n) / n), each gamma_k is profiled in
closed form (a quadratic), and only the alpha_j (none, or a few) are profiled numerically, with an
analytic gradient and a convergence check.

The data are always an Asimov set: n_k = mu_A s_k + b_k with the auxiliary data at nominal (mu_A = 0
for limits, 1 for the discovery significance). Its best fit is (mu_A, alpha = 0, gamma = 1), where
lambda_k = n_k, so the profiled deviance 2 [NLL(mu, theta^^) - NLL(best fit)] is the asymptotic
test statistic q_mu (or q_0) itself.
"""

from dataclasses import dataclass, field

import numpy as np
import pyhf
from scipy.optimize import minimize

# an accepted profile fit: its estimated distance to the minimum (as MINUIT's EDM, g^T H^-1 g / 2 in units of
# half the deviance) below this, i.e. q off by less than 2e-8 (the limits' roots are solved to 1e-10 in mu)
EDM_TOLERANCE = 1e-8
_SERIES = 1e-2  # below this |x|, h(x) = x - log1p(x) from its series (no cancellation)


class ProfileError(RuntimeError):
    """The nuisance parameters could not be profiled reliably (the message says where)."""


@dataclass(frozen=True)
class Systematic:
    """A normalisation uncertainty of one nuisance parameter: per bin, the factor kappa by which the
    signal and the background yields move at alpha = +1 (1 / kappa at alpha = -1; 1: no effect)."""

    name: str
    signal: np.ndarray
    background: np.ndarray

    @classmethod
    def from_variations(cls, name, signal, background, signal_up, signal_down, background_up, background_down):
        """kappa = sqrt(up / down) per bin (the symmetrised log-normal of the two variations; a bin
        without yield gets 1)."""

        def kappa(nominal, up, down):
            up, down, nominal = (np.asarray(v, dtype=np.float64) for v in (up, down, nominal))
            ok = (up > 0) & (down > 0) & (nominal > 0)
            return np.where(ok, np.sqrt(np.where(ok, up, 1.0) / np.where(ok, down, 1.0)), 1.0)

        return cls(name, kappa(signal, signal_up, signal_down), kappa(background, background_up, background_down))


@dataclass(frozen=True)
class BinnedModel:
    signal: np.ndarray
    background: np.ndarray
    background_sumw2: np.ndarray | None = None  # None (or 0 in a bin): no MC statistical parameter
    systematics: tuple = field(default=())

    def __post_init__(self):
        s, b = (np.asarray(v, dtype=np.float64) for v in (self.signal, self.background))
        object.__setattr__(self, "signal", s)
        object.__setattr__(self, "background", b)
        if self.background_sumw2 is not None:
            object.__setattr__(self, "background_sumw2", np.asarray(self.background_sumw2, dtype=np.float64))
        shapes = {len(s), len(b)} | ({len(self.background_sumw2)} if self.background_sumw2 is not None else set())
        shapes |= {len(v) for syst in self.systematics for v in (syst.signal, syst.background)}
        if len(shapes) != 1:
            raise ValueError("signal, background, sumw2 and every systematic need one entry per bin")
        if len(b) == 0 or np.any(~(b > 0)) or np.any(~np.isfinite(b)):
            raise ValueError(f"every bin needs a positive finite background yield, got {b.tolist()}")
        if np.any(~(s >= 0)) or not s.sum() > 0 or np.any(~np.isfinite(s)):
            raise ValueError(f"the signal yields must be finite, >= 0 and not all 0, got {s.tolist()}")
        if self.background_sumw2 is not None and np.any(~(self.background_sumw2 >= 0)):
            raise ValueError(f"sumw2 must be >= 0, got {self.background_sumw2.tolist()}")
        for syst in self.systematics:
            if np.any(~(np.asarray(syst.signal) > 0)) or np.any(~(np.asarray(syst.background) > 0)):
                raise ValueError(f"systematic {syst.name}: every kappa must be > 0")

    @property
    def tau(self):
        """1 / sigma_gamma^2 per bin (inf where there is no MC statistical parameter)."""
        if self.background_sumw2 is None:
            return np.full(len(self.background), np.inf)
        with np.errstate(divide="ignore"):
            return np.where(self.background_sumw2 > 0, self.background**2 / self.background_sumw2, np.inf)

    @property
    def log_kappa(self):
        """(ln kappa^S, ln kappa^B), each of shape (n_systematics, n_bins)."""
        n = len(self.background)
        signal = np.array([np.log(syst.signal) for syst in self.systematics]).reshape(-1, n)
        background = np.array([np.log(syst.background) for syst in self.systematics]).reshape(-1, n)
        return signal, background


def h(x):
    """x - ln(1 + x), accurate for small |x| too (the Poisson deviance per expected event)."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < _SERIES
    xs = np.where(small, x, 0.0)
    # x^2/2 - x^3/3 + ... - x^11/11: truncation below 1e-22 relative for |x| < 1e-2
    series = sum((-1) ** k * xs**k / k for k in range(2, 12))
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = x - np.log1p(np.where(small, 0.0, x))
    return np.where(small, series, direct)


def _deviance_at(model, mu, mu_asimov, alpha, log_kappa, tau):
    """Half the deviance at (mu, alpha), gamma profiled in closed form, and its gradient in alpha."""
    s, b = model.signal, model.background
    log_s = alpha @ log_kappa[0] if len(alpha) else np.zeros_like(s)
    log_b = alpha @ log_kappa[1] if len(alpha) else np.zeros_like(b)
    factor_s, factor_b = np.exp(log_s), np.exp(log_b)
    n = mu_asimov * s + b
    m, b_mod = mu * s * factor_s, b * factor_b
    # lambda - n at gamma = 1, without cancellation: s (mu S - mu_A) + b (B - 1)
    excess0 = s * ((mu - mu_asimov) * factor_s + mu_asimov * np.expm1(log_s)) + b * np.expm1(log_b)
    lambda0 = n + excess0
    # gamma = 1 + delta: b'(lambda - n) + tau delta lambda = 0, lambda = lambda0 + delta b'
    # -> tau b' delta^2 + (b'^2 + tau lambda0) delta + b' excess0 = 0, the root near 0 (stable form)
    finite = np.isfinite(tau)
    t = np.where(finite, tau, 0.0)
    quad_b = b_mod**2 + t * lambda0
    disc = quad_b**2 - 4.0 * t * b_mod * b_mod * excess0
    delta = np.where(finite, -2.0 * b_mod * excess0 / (quad_b + np.sqrt(np.maximum(disc, 0.0))), 0.0)
    # gamma >= 0 (pyhf bounds it too): the NLL is convex in gamma, so a negative root means gamma = 0
    at_zero = delta < -1.0
    delta = np.where(at_zero, -1.0, delta)
    lam = lambda0 + delta * b_mod
    # lambda - n = -tau delta lambda / b' at an inner optimum of gamma (no cancellation), else directly
    excess = np.where(finite & ~at_zero, -t * delta * lam / b_mod, np.where(at_zero, excess0 - b_mod, excess0))
    half = float(np.sum(n * h(excess / n)) + 0.5 * np.sum(t * delta**2) + 0.5 * np.sum(alpha**2))
    # gradient (envelope theorem: delta is at its optimum): sum (1 - n / lambda) d lambda / d alpha + alpha
    weight = excess / lam
    grad = log_kappa[0] @ (weight * m) + log_kappa[1] @ (weight * (1.0 + delta) * b_mod) + alpha
    return half, grad, delta


def profiled_deviance(model, mu, mu_asimov=0.0):
    """q = 2 [NLL(mu, theta^^(mu)) - NLL(best fit)] on the Asimov data of ``mu_asimov``.

    Returns (q, alpha^^, gamma^^). Raises ProfileError when the numerical profile over the alpha_j
    does not converge (estimated distance to the minimum above EDM_TOLERANCE)."""
    log_kappa, tau = model.log_kappa, model.tau
    n_alpha = log_kappa[0].shape[0]
    alpha = np.zeros(n_alpha)
    if n_alpha:
        def objective(a):
            half, grad, _ = _deviance_at(model, mu, mu_asimov, a, log_kappa, tau)
            return half, grad

        result = minimize(objective, alpha, jac=True, method="BFGS", options={"gtol": 1e-9})
        alpha = result.x
        _, grad, _ = _deviance_at(model, mu, mu_asimov, alpha, log_kappa, tau)
        edm = 0.5 * float(grad @ result.hess_inv @ grad)
        if not (np.isfinite(edm) and abs(edm) < EDM_TOLERANCE):
            raise ProfileError(f"the profile over {[s.name for s in model.systematics]} at mu = {mu:.6g} did not "
                               f"converge (estimated distance to the minimum {edm:.2g}, gradient {grad.tolist()})")
    half, _, delta = _deviance_at(model, mu, mu_asimov, alpha, log_kappa, tau)
    return 2.0 * max(half, 0.0), alpha, 1.0 + delta


def pyhf_model(model, mu_max=10.0):
    """The same model in pyhf: one channel per bin, ``staterror`` from sumw2, a ``normsys`` (code1,
    hi = kappa, lo = 1 / kappa) per systematic: for cross-checks and for users who want the workspace."""
    channels = []
    tau = model.tau
    for k in range(len(model.background)):
        signal_modifiers = [{"name": "mu", "type": "normfactor", "data": None}]
        background_modifiers = []
        if np.isfinite(tau[k]):
            background_modifiers.append({"name": f"mc_stat_{k}", "type": "staterror",
                                         "data": [float(np.sqrt(model.background_sumw2[k]))]})
        for syst in model.systematics:
            for modifiers, kappa in ((signal_modifiers, syst.signal[k]), (background_modifiers, syst.background[k])):
                if kappa != 1.0:
                    modifiers.append({"name": syst.name, "type": "normsys",
                                      "data": {"hi": float(kappa), "lo": float(1.0 / kappa)}})
        channels.append({"name": f"bin_{k}", "samples": [
            {"name": "signal", "data": [float(model.signal[k])], "modifiers": signal_modifiers},
            {"name": "background", "data": [float(model.background[k])], "modifiers": background_modifiers},
        ]})
    spec = {"channels": channels, "parameters": [{"name": "mu", "bounds": [[0.0, float(mu_max)]]}]}
    return pyhf.Model(spec, poi_name="mu", modifier_settings={"normsys": {"interpcode": "code1"},
                                                              "histosys": {"interpcode": "code0"}})
