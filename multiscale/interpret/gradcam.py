"""Grad-CAM of a class score on the token activations of a particle stream's self-attention block,
one value per constituent, projected into the aligned (eta, phi) plane of the jet.

With A (N, T, D) the output of the chosen block (tokens x channels) and g = dS/dA for the class
score S (a logit):

- ``gradcam`` (Selvaraju et al.; the talk's method): channel weights alpha_d = mean over the
  event's valid tokens of g[t, d]; cam[t] = ReLU(sum_d alpha_d A[t, d]);
- ``hirescam`` (Draelos & Carin): cam[t] = ReLU(sum_d g[t, d] A[t, d]), token-specific gradients,
  so a token the score does not depend on gets exactly 0.

Why not captum's ``LayerGradCam``: it expects channels on dim 1 (images, N x C x H x W) while
tokens are (N, T, D), and it averages gradients over every position, padding included. Here two
temporary forward hooks capture the block outputs (removed afterwards; nothing stays on the
model) and the mean runs over valid tokens only. ``tests/test_interpret.py`` checks the result
against ``LayerGradCam`` on a channels-first view of the same layer.
"""

import numpy as np
import torch

from .data import feature_index
from .layout import constituent_jets

METHODS = ("gradcam", "hirescam")
NORMALISATIONS = ("max", "none")


def cam_from(acts, grads, valid, method="gradcam"):
    """acts, grads (N, T, D); valid (N, T) bool -> cam (N, T), 0 on padding."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    v = valid.unsqueeze(-1).to(acts.dtype)
    if method == "gradcam":
        alpha = (grads * v).sum(dim=1, keepdim=True) / v.sum(dim=1, keepdim=True).clamp(min=1.0)
        cam = (alpha * acts).sum(dim=-1)
    else:
        cam = (grads * acts).sum(dim=-1)
    return torch.relu(cam) * valid.to(acts.dtype)


def particle_streams(model):
    return [spec.name for spec in model.streams if not spec.is_event_stream]


def token_cam(model, inputs, target, layer=-1, streams=None, method="gradcam"):
    """Grad-CAM of logit ``target`` on block ``layer`` of each particle stream.

    Returns ({stream: (cam (N, 1 + P), valid (N, 1 + P))}, logits (N, classes)); token 0 is the
    register token. The model runs in eval mode; events are independent, so one backward pass of
    the summed score gives every event's gradient.
    """
    model.eval()
    streams = list(streams or particle_streams(model))
    if not streams:
        raise ValueError("the model has no particle stream (pf_*, j1_*, ...): nothing to project into (eta, phi)")
    acts, hooks = {}, []
    for stream in streams:
        blocks = model.stream_blocks(stream)
        if not -len(blocks) <= layer < len(blocks):
            raise ValueError(f"layer {layer} out of range: stream '{stream}' has {len(blocks)} blocks")

        def keep(module, args, output, stream=stream):
            acts[stream] = output

        hooks.append(blocks[layer].register_forward_hook(keep))
    try:
        with torch.enable_grad():
            encoded = model.encode(*inputs)
            logits = model.head(model.fuse(encoded))
            grads = torch.autograd.grad(logits[:, target].sum(), [acts[s] for s in streams])
    finally:
        for hook in hooks:
            hook.remove()
    cams = {
        s: (cam_from(acts[s].detach(), g.detach(), encoded[s][1], method), encoded[s][1])
        for s, g in zip(streams, grads)
    }
    return cams, logits.detach()


class CamHistogram:
    """Grad-CAM summed per (eta, phi) bin over events, for one jet and one class."""

    def __init__(self, bins, extent):
        self.edges = np.linspace(-extent, extent, bins + 1)
        self.sums = np.zeros((bins, bins))  # [eta bin, phi bin]
        self.counts = np.zeros((bins, bins))  # constituents per bin
        self.outside = 0  # constituents outside the histogram range
        self.events = 0

    def add(self, eta, phi, cam):
        eta, phi, cam = (np.asarray(x, dtype=float) for x in (eta, phi, cam))
        inside = (np.abs(eta) <= self.edges[-1]) & (np.abs(phi) <= self.edges[-1])
        self.outside += int((~inside).sum())
        e, p, c = eta[inside], phi[inside], cam[inside]
        self.sums += np.histogram2d(e, p, bins=(self.edges, self.edges), weights=c)[0]
        self.counts += np.histogram2d(e, p, bins=(self.edges, self.edges))[0]

    def per_event(self):
        """Mean Grad-CAM per event in each bin (what the plots show)."""
        return self.sums / max(self.events, 1)


# the (eta, phi) of a constituent relative to its jet, as this project's configs and ParT's name them
COORDINATE_NAMES = (("{stream}_eta", "{stream}_phi"), ("part_deta", "part_dphi"), ("part_etarel", "part_phirel"))


def _coordinate_indices(data_config, stream, coordinates=None):
    """Feature indices of the constituents' (eta, phi) in ``<stream>_features``: the variables
    ``coordinates`` (a pair of names), else the first pair of COORDINATE_NAMES the group has."""
    group = f"{stream}_features"
    candidates = [coordinates] if coordinates else [(e.format(stream=stream), p.format(stream=stream))
                                                    for e, p in COORDINATE_NAMES]
    for eta_name, phi_name in candidates:
        eta, phi = (feature_index(data_config, group, name) for name in (eta_name, phi_name))
        if eta is not None and phi is not None:
            return eta, phi
    tried = ", ".join(f"{e}/{p}" for e, p in candidates)
    raise ValueError(f"input group {group} has none of the coordinate pairs {tried} (it has "
                     f"{list(data_config.input_dicts.get(group, []))}); name them with --coordinates ETA PHI")


def gradcam_histograms(model, data_config, batches, target, layer=-1, method="gradcam", bins=32, extent=0.8,
                       normalise="max", coordinates=None):
    """Accumulate per-constituent Grad-CAM into (eta, phi) histograms per fat jet.

    ``normalise='max'`` scales each event's constituent values to a maximum of 1 (every event
    counts the same); 'none' keeps the raw values. Returns ({jet: CamHistogram}, summary dict with
    the register token's mean share of the event's Grad-CAM and the mean target logit).
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    streams = particle_streams(model)
    coords = {s: _coordinate_indices(data_config, s, coordinates) for s in streams}
    specs = {spec.name: spec for spec in model.streams}
    hists, register_share, scores, events = {}, [], [], 0
    for inputs in batches:
        named = dict(zip(model.input_names, inputs))
        cams, logits = token_cam(model, inputs, target, layer, streams, method)
        n = logits.shape[0]
        events += n
        scores.append(logits[:, target].numpy())
        # per-event normalisation over all constituents of all particle streams
        constituent_max = torch.stack([(cam[:, 1:]).amax(dim=1) for cam, _ in cams.values()]).amax(dim=0)
        scale = torch.ones(n)
        if normalise == "max":
            scale = torch.where(constituent_max > 0, 1.0 / constituent_max, torch.zeros(n))
        reg = sum(cam[:, 0] for cam, _ in cams.values())
        total = reg + sum(cam[:, 1:].sum(dim=1) for cam, _ in cams.values())
        register_share.append(torch.where(total > 0, reg / total.clamp(min=1e-30), torch.zeros(n)).numpy())
        for stream, (cam, valid) in cams.items():
            features = named[f"{stream}_features"]
            n_tokens = cam.shape[1] - 1
            eta = features[:, coords[stream][0], :n_tokens]
            phi = features[:, coords[stream][1], :n_tokens]
            values = cam[:, 1:] * scale[:, None]
            names, jet_id = constituent_jets(specs[stream], features, n_tokens)
            for j, jet in enumerate(names):
                select = valid[:, 1:] & (jet_id == j)
                hist = hists.setdefault(jet, CamHistogram(bins, extent))
                hist.add(eta[select].numpy(), phi[select].numpy(), values[select].numpy())
    for hist in hists.values():
        hist.events = events
    summary = {
        "events": events,
        "register_share": float(np.mean(np.concatenate(register_share))) if register_share else float("nan"),
        "mean_score": float(np.mean(np.concatenate(scores))) if scores else float("nan"),
    }
    return hists, summary


def histograms_to_arrays(hists_by_class, summaries):
    """{class: {jet: CamHistogram}} -> flat dict of arrays for ``np.savez``."""
    out = {}
    for cls, hists in hists_by_class.items():
        for jet, h in hists.items():
            out["edges"] = h.edges
            out[f"{cls}_{jet}_cam_per_event"] = h.per_event()
            out[f"{cls}_{jet}_cam_sums"] = h.sums
            out[f"{cls}_{jet}_constituents"] = h.counts
            out[f"{cls}_{jet}_outside"] = np.array(h.outside)
        for key, value in summaries[cls].items():
            out[f"{cls}_{key}"] = np.array(value)
    return out
