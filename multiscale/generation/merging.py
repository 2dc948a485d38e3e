"""Which merging a MadGraph Les Houches file was made for, and the Pythia settings that apply it.

A MadGraph sample of several jet multiplicities (``generate p p > l+ l- @1``, ``add process p p >
l+ l- j @2``, ...) overlaps with itself until it is merged: the shower of the 0-jet events makes
the jets that the 1-jet events hold already. Showered event by event without the merging it was
made for, every multiplicity is kept in full and the jets are double counted. The file's header
says how the sample was made: ``MG5ProcCard`` (the processes, their ``@N`` tags, ``[QCD]`` for
NLO) and ``MGRunCard`` (``ickkw``: 0 none, 1 MLM, 3 FxFx; ``xqcut``, ``ktdurham``, ``ptlund``,
``ptj``, ``maxjetflavor``). :func:`plan` reads them and decides:

* ``ickkw = 1``: MLM with MadGraph's own parameters (``JetMatching:setMad = on``: qCut = xqcut,
  nQmatch = maxjetflavor, clFact = alpsfact), or qCut = ``--merging-scale`` (not below xqcut);
* ``ickkw = 3``: FxFx (``JetMatching:doFxFx``, qCutME = the run card's ptj); the merging scale
  qCut is a shower-side choice the header does not hold: ``--merging-scale`` gives it;
* ``ickkw = 0`` with several jet multiplicities: CKKW-L (``Merging:*``), merging scale ktdurham
  (kT merging) or ptlund (Lund-pT merging) of the run card, or ``--merging-scale`` (kT); the hard
  process (``Merging:Process``) translated from the lowest multiplicity, or ``--merging-process``;
* one jet multiplicity, or a file without a MadGraph header (POWHEG, Pythia 6, ...): no merging.

The cards may come in any order and alone: a MadGraph 4 / MadEvent header has the run card without the
MG5ProcCard; the jet multiplicities are then those of the events (the light partons coming out of the
two incoming ones, or aMC@NLO's ``npNLO``). A header with the process card but no run card cannot say
which merging a multi-jet sample was made for: refused, naming ``--merging none``.

A sample whose merging cannot be set up from the header and the options is refused with one line
naming the file, what is missing and the option that supplies it. NLO files of aMC@NLO (``[QCD]``)
get the shower settings MC@NLO matching needs (Pythia's "aMC@NLO matching" page), merged or not.
``--merging none`` showers a sample as it is, overlaps included, when that is what one wants.
"""

import re
from dataclasses import dataclass, field

from .pythia_setup import GenerationError

REQUESTS = ("auto", "none")  # --merging

# Pythia's "aMC@NLO matching" page: the minimal set, plus the global-recoil strategy of its FxFx example
MCATNLO_SHOWER = (
    "SpaceShower:pTmaxMatch = 1", "SpaceShower:pTmaxFudge = 1", "SpaceShower:MEcorrections = off",
    "TimeShower:pTmaxMatch = 1", "TimeShower:pTmaxFudge = 1", "TimeShower:MEcorrections = off",
    "TimeShower:globalRecoil = on", "TimeShower:limitPTmaxGlobal = on", "TimeShower:nMaxGlobalRecoil = 1",
    "TimeShower:globalRecoilMode = 2", "TimeShower:nMaxGlobalBranch = 1", "TimeShower:weightGluonToQuark = 1",
    "Check:epTolErr = 2e-2",  # aMC@NLO writes momenta rounded beyond Pythia's default tolerance
)
# MLM and FxFx jets as in Pythia's examples: kT jets of R = 1, no rapidity limit in practice
JET_MATCHING = ("JetMatching:merge = on", "JetMatching:scheme = 1", "JetMatching:jetAlgorithm = 2",
                "JetMatching:slowJetPower = 1", "JetMatching:coneRadius = 1.0", "JetMatching:etaJetMax = 10.0")

LIGHT_PARTONS = {"g", "u", "d", "s", "c", "u~", "d~", "s~", "c~"}
CHARGED_LEPTONS = {"e+", "e-", "mu+", "mu-", "ta+", "ta-"}
NEUTRINOS = {"ve", "ve~", "vm", "vm~", "vt", "vt~"}
# MadGraph names Pythia's Merging:Process reads as they are
PYTHIA_PROCESS_NAMES = CHARGED_LEPTONS | NEUTRINOS | {"t", "t~", "b", "b~", "z", "w+", "w-", "h", "a", "p"}
_OPTION = re.compile(r"[=@\[$/]")  # what ends a process's particle list: QED=2, @2, [QCD], $ t, / h


@dataclass(frozen=True)
class MadGraphProcess:
    initial: tuple  # particle labels before '>'
    final: tuple  # after the last '>', the decays (after ',') and options left out
    tag: str | None  # the @N multiplicity tag
    nlo: bool  # [QCD]: aMC@NLO


@dataclass(frozen=True)
class MadGraphHeader:
    processes: tuple  # MadGraphProcess, in the card's order (none without an MG5ProcCard)
    definitions: dict  # multiparticle label -> its members
    run_card: dict  # parameter name (lower case) -> value as written (empty without an MGRunCard)
    cards: tuple = ()  # the MadGraph cards found in the header
    event_jets: tuple = ()  # matrix-element jet multiplicities of the events (sources.inspect_lhe)
    event_nlo: bool = False  # the events carry aMC@NLO's npNLO attribute

    @property
    def has_run_card(self):
        return "MGRunCard" in self.cards

    @property
    def jets_from(self):
        """Where the jet multiplicities come from: the process card, else the events."""
        return "MG5ProcCard" if self.processes else "the events (light partons out of the incoming ones)"

    def jets(self, process):
        """Light-jet partons in the final state: ``j`` and labels made of light partons only."""
        light = {label for label, members in self.definitions.items() if set(members) <= LIGHT_PARTONS}
        return sum(token in light | {"j"} for token in process.final)

    @property
    def jet_multiplicities(self):
        if not self.processes:
            return sorted(self.event_jets)
        return sorted({self.jets(process) for process in self.processes})

    @property
    def nlo(self):
        """aMC@NLO: [QCD] in the process card; without one, the run card of aMC@NLO (parton_shower) or
        the events' npNLO attribute."""
        if self.processes:
            return any(process.nlo for process in self.processes)
        return "parton_shower" in self.run_card or self.event_nlo

    def number(self, name, kind=float):
        """A run-card parameter as a number (None when absent or not a number)."""
        try:
            return kind(float(self.run_card[name])) if name in self.run_card else None
        except ValueError:
            return None


def _block(text, tag):
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL | re.IGNORECASE)
    return None if match is None else match.group(1).replace("<![CDATA[", "").replace("]]>", "")


def _process(line):
    """A ``generate`` / ``add process`` line -> MadGraphProcess (None if it holds no '>')."""
    definition = re.sub(r"^\s*(generate|add\s+process)\s+", "", line)
    tag = re.search(r"@\s*(\w+)", definition)
    production = definition.split(",")[0]  # decay chains after the first comma
    if ">" not in production:
        return None
    parts = production.split(">")

    def particles(text):
        tokens = []
        for token in text.split():
            if _OPTION.search(token):
                break
            tokens.append(token)
        return tuple(tokens)

    nlo = re.search(r"\[\s*(?:(?:real|all)\s*=\s*)?QCD\s*\]", definition) is not None  # not [noborn=QCD]
    return MadGraphProcess(particles(parts[0]), particles(parts[-1]), tag.group(1) if tag else None, nlo)


CARDS = ("MG5ProcCard", "MGProcCard", "MGRunCard")  # MGProcCard: MadGraph 4 / MadEvent's process card


def read_madgraph_header(header):
    """The MadGraph cards in a Les Houches header (the text before <init>, its blocks in any order), or
    None without any. A header may hold only some of them (MadGraph 4 / MadEvent files: no MG5ProcCard)."""
    blocks = {card: _block(header, card) for card in CARDS}
    cards = tuple(card for card, text in blocks.items() if text is not None)
    if not cards:
        return None
    proc_card, run_card = blocks["MG5ProcCard"] or "", blocks["MGRunCard"] or ""
    processes, definitions = [], {}
    for line in proc_card.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("define "):
            label, _, members = line[len("define "):].partition("=")
            definitions[label.strip()] = tuple(members.split())
        elif re.match(r"(generate|add\s+process)\s", line):
            process = _process(line)
            if process is not None:
                processes.append(process)
    parameters = {}
    for line in run_card.splitlines():
        line = line.split("!", 1)[0].split("#", 1)[0]
        value, equals, name = line.partition("=")
        if equals and name.strip() and value.strip():
            parameters[name.strip().lower()] = value.strip()
    return MadGraphHeader(tuple(processes), definitions, parameters, cards)


@dataclass(frozen=True)
class Merging:
    """What a Les Houches file gets from Pythia: ``scheme`` "none", "MLM", "FxFx" or "CKKW-L"."""

    scheme: str
    settings: tuple = ()  # Pythia readString lines
    jet_matching_hook: bool = False  # MLM and FxFx run in Pythia's JetMatchingMadgraph user hook
    details: dict = field(default_factory=dict)  # for the sidecar and the log line

    @property
    def merged(self):
        return self.scheme != "none"

    def describe(self):
        """One line for the log: what the file gets."""
        details = self.details
        parts = [f"{self.scheme} merging" if self.merged else "no merging"]
        if details.get("jet_multiplicities"):
            parts.append(f"jets {_listed(details['jet_multiplicities'])}")
        if self.merged:
            parts.append(f"merging scale {details['merging_scale_gev']:g} GeV ({details['scale_from']})")
        if "merging_process" in details:
            parts.append(f"Merging:Process = {details['merging_process']}")
        if not self.merged:
            parts.append(details["reason"])
        if details.get("nlo"):
            parts.append("aMC@NLO shower settings (MC@NLO matching)")
        return "; ".join(parts)


def _listed(numbers):
    return ", ".join(str(n) for n in numbers)


def plan(path, header, request="auto", scale=None, process=None):
    """The Merging of the Les Houches file ``path`` whose MadGraph cards are ``header`` (None: none),
    given --merging ``request``, --merging-scale ``scale`` (GeV) and --merging-process ``process``.
    Raises GenerationError, one line naming the file, when the merging cannot be set up."""
    if header is None:
        if scale is not None or process is not None:
            raise GenerationError(f"{path}: no MadGraph cards (MG5ProcCard, MGRunCard) in its header, so no merging "
                                  "is set up and --merging-scale / --merging-process do not apply")
        return Merging("none", details={"reason": "no MadGraph cards in the header: one sample, not merged",
                                        "nlo": False})
    multiplicities = header.jet_multiplicities
    base = {"jet_multiplicities": multiplicities, "jet_multiplicities_from": header.jets_from, "nlo": header.nlo,
            "header_cards": list(header.cards)}
    shower = MCATNLO_SHOWER if header.nlo else ()
    if request == "none":
        return Merging("none", shower, details={**base, "reason": "--merging none"})
    if not header.has_run_card and len(multiplicities) > 1:
        raise GenerationError(
            f"{path}: its header holds {' and '.join(header.cards)} ({len(multiplicities)} jet multiplicities: "
            f"{_listed(multiplicities)} jets) but no MGRunCard, whose ickkw says which merging the sample was made "
            "for (MLM, CKKW-L, FxFx) and its cut: put the generation's run card back into the header, or pass "
            "--merging none to shower it unmerged")
    ickkw = header.number("ickkw", int)
    if ickkw in (1, 3) and process is not None:
        raise GenerationError(f"{path}: {'MLM' if ickkw == 1 else 'FxFx'} sample (ickkw = {ickkw}): --merging-process "
                              "applies to CKKW-L only")
    if ickkw == 1:
        return _mlm(path, header, scale, base)
    if ickkw == 3:
        return _fxfx(path, header, scale, base)
    if ickkw not in (0, None):
        raise GenerationError(f"{path}: its run card sets ickkw = {ickkw}, a merging this tool does not set up "
                              "(ickkw 1: MLM, 3: FxFx, 0: CKKW-L or none); pass --merging none to shower it unmerged")
    if len(multiplicities) > 1:
        return _ckkwl(path, header, scale, process, base)
    if scale is not None or process is not None:
        where = f"its run card (ickkw = {ickkw or 0})" if header.has_run_card else "its header (no MGRunCard)"
        raise GenerationError(f"{path}: one jet multiplicity ({_listed(multiplicities)} jets) and no merging in "
                              f"{where}: nothing to merge, so --merging-scale / --merging-process do not apply")
    return Merging("none", shower, details={**base, "reason": "one jet multiplicity: nothing to merge"})


def _tags(header):
    return " ".join(f"@{p.tag}" for p in header.processes if p.tag) or "no @N tags"


def _mlm(path, header, scale, base):
    xqcut, flavours = header.number("xqcut"), header.number("maxjetflavor", int)
    missing = [name for name, value in (("xqcut", xqcut), ("maxjetflavor", flavours)) if value is None or value <= 0]
    if missing:
        raise GenerationError(f"{path}: MLM sample (ickkw = 1) whose run card lacks {' and '.join(missing)}: MLM "
                              "matching needs MadGraph's generation cut; this file cannot be merged as it is")
    settings = [*JET_MATCHING, f"JetMatching:nJetMax = {max(base['jet_multiplicities'])}"]
    if scale is None:  # Pythia reads qCut = xqcut, nQmatch, clFact from the header itself
        settings.append("JetMatching:setMad = on")
        scale, scale_from = xqcut, "xqcut of the run card (JetMatching:setMad = on)"
    else:
        if scale < xqcut:
            raise GenerationError(f"{path}: --merging-scale {scale:g} GeV is below the generation cut xqcut = "
                                  f"{xqcut:g} GeV of its MLM run card: the matching needs qCut >= xqcut")
        clfact = header.number("alpsfact") or 1.0
        settings += ["JetMatching:setMad = off", f"JetMatching:qCut = {scale:g}", f"JetMatching:nQmatch = {flavours}",
                     f"JetMatching:clFact = {clfact:g}"]
        scale_from = "--merging-scale"
    details = {**base, "reason": "MGRunCard ickkw = 1", "merging_scale_gev": scale, "scale_from": scale_from,
               "xqcut_gev": xqcut}
    return Merging("MLM", (*settings, *(MCATNLO_SHOWER if header.nlo else ())), True, details)


def _fxfx(path, header, scale, base):
    ptj, flavours = header.number("ptj"), header.number("maxjetflavor", int) or 4
    nlo_jets = [header.jets(p) for p in header.processes if p.nlo] or base["jet_multiplicities"]
    if ptj is None or ptj <= 0:
        raise GenerationError(f"{path}: FxFx sample (ickkw = 3) whose run card has no ptj > 0, the matrix-element "
                              "cut FxFx needs (JetMatching:qCutME); this file cannot be merged as it is")
    if scale is None:
        jets = _listed(base["jet_multiplicities"])
        raise GenerationError(f"{path}: FxFx sample (ickkw = 3, {_tags(header)}: {jets} jets): the header gives the "
                              f"matrix-element cut ptj = {ptj:g} GeV but not the merging scale; pass --merging-scale "
                              "GEV (JetMatching:qCut, typically 1.5-3 x ptj)")
    if scale <= ptj:
        raise GenerationError(f"{path}: --merging-scale {scale:g} GeV must lie above the FxFx matrix-element cut "
                              f"ptj = {ptj:g} GeV of its run card")
    settings = (*JET_MATCHING, "JetMatching:setMad = off", "JetMatching:doFxFx = on", f"JetMatching:qCut = {scale:g}",
                f"JetMatching:qCutME = {ptj:g}", f"JetMatching:nQmatch = {flavours}",
                f"JetMatching:nJetMax = {max(nlo_jets)}", *MCATNLO_SHOWER)
    details = {**base, "nlo": True, "reason": "MGRunCard ickkw = 3", "merging_scale_gev": scale,
               "scale_from": "--merging-scale", "qcut_me_gev": ptj}
    return Merging("FxFx", settings, True, details)


def _ckkwl(path, header, scale, process, base):
    multiplicities = base["jet_multiplicities"]
    ktdurham, ptlund, xqcut = (header.number(name) for name in ("ktdurham", "ptlund", "xqcut"))
    generation_cuts = {name: value for name, value in (("ktdurham", ktdurham), ("ptlund", ptlund), ("xqcut", xqcut))
                       if value is not None and value > 0}
    if scale is not None:
        below = {name: value for name, value in generation_cuts.items() if scale < value}
        if below:
            cuts = ", ".join(f"{name} = {value:g} GeV" for name, value in below.items())
            raise GenerationError(f"{path}: --merging-scale {scale:g} GeV is below the generation cut of its run card "
                                  f"({cuts}): the merging scale must not lie below it")
        kind, scale_from = "kT", "--merging-scale"
    elif "ktdurham" in generation_cuts:
        kind, scale, scale_from = "kT", ktdurham, "ktdurham of the run card"
    elif "ptlund" in generation_cuts:
        kind, scale, scale_from = "pTlund", ptlund, "ptlund of the run card"
    else:
        cut = f" xqcut = {xqcut:g} GeV" if xqcut and xqcut > 0 else ""
        raise GenerationError(
            f"{path}: {len(multiplicities)} jet multiplicities ({_tags(header)}: {_listed(multiplicities)} jets) "
            f"overlap until merged, and the run card names no merging (ickkw = 0, no ktdurham or ptlund); pass "
            f"--merging-scale GEV for CKKW-L merging (kT, at or above the generation cut{cut}), or --merging none "
            "to shower them unmerged")
    if process is None:
        process = pythia_process(path, header)
    flavours = header.number("maxjetflavor", int) or 5
    switch = "Merging:doKTMerging = on" if kind == "kT" else "Merging:doPTLundMerging = on"
    kt_settings = ("Merging:ktType = 1", f"Merging:Dparameter = {header.number('dparameter') or 0.4:g}") \
        if kind == "kT" else ()
    settings = (switch, *kt_settings, f"Merging:TMS = {scale:g}", f"Merging:Process = {process}",
                f"Merging:nJetMax = {max(multiplicities) - min(multiplicities)}", f"Merging:nQuarksMerge = {flavours}",
                *(MCATNLO_SHOWER if header.nlo else ()))
    details = {**base, "reason": "several jet multiplicities, ickkw = 0", "merging_scale_gev": scale,
               "scale_from": scale_from, "merging_scale_kind": kind, "merging_process": process}
    return Merging("CKKW-L", settings, False, details)


def pythia_process(path, header):
    """Pythia's Merging:Process for the lowest jet multiplicity of ``header`` (e.g. ``pp>LEPTONS,NEUTRINOS``
    for ``p p > l+ l-`` with l+ = e+ mu+); GenerationError naming --merging-process when it cannot be told."""
    if not header.processes:
        raise GenerationError(f"{path}: its header has no process card (MG5ProcCard) to read the hard process from; "
                              "pass --merging-process (e.g. pp>e+e-, pp>tt~, pp>LEPTONS,NEUTRINOS)")
    base = min(header.processes, key=header.jets)
    light = {label for label, members in header.definitions.items() if set(members) <= LIGHT_PARTONS} | {"j"}
    final = [token for token in base.final if token not in light]

    def members(token):
        return set(header.definitions.get(token, (token,)))

    leptonic = final and all(members(token) <= CHARGED_LEPTONS | NEUTRINOS for token in final)
    if leptonic and any(token in header.definitions for token in final):
        final_text = "LEPTONS,NEUTRINOS"  # Pythia's containers stand for MadGraph's lepton multiparticles
    elif final and all(token in PYTHIA_PROCESS_NAMES for token in final):
        final_text = "".join(final)
    else:
        final_text = None
    initial = [token for token in base.initial]
    if final_text is None or not all(token in PYTHIA_PROCESS_NAMES for token in initial):
        line = " ".join(base.initial) + " > " + " ".join(base.final)
        raise GenerationError(f"{path}: cannot translate its hard process '{line}' into Pythia's Merging:Process; "
                              "pass --merging-process (e.g. pp>e+e-, pp>tt~, pp>LEPTONS,NEUTRINOS)")
    return "".join(initial) + ">" + final_text
