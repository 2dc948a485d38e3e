"""The ntuple schema: the contract between the generator, the data configs and the tools.

See ``docs/schema.md`` (the branch table, types, units, object slots). One TTree ``Events`` per file, one entry per selected event,
GeV and radians. Change a name here and every config, tool and test must follow.
"""

TREE_NAME = "Events"

# process codes stored in the ``process`` branch
PROCESS_CODES = {"qcd": 0, "ttbar": 1, "hh4b": 2}
SIGNAL_PROCESSES = ("hh4b",)

# ``phase_space`` branch: which part of its process's phase space a sample covers. The heavy-flavour
# filtered and vetoed samples (generation/hf_filter.py) are disjoint and add up to the inclusive
# process, so a process is evaluated either from its inclusive sample or from both of them.
PHASE_SPACES = {"inclusive": 0, "hf_filtered": 1, "hf_vetoed": 2}
STITCHED_PHASE_SPACES = (PHASE_SPACES["hf_filtered"], PHASE_SPACES["hf_vetoed"])
# the generator's --hf-filter modes and the file-name suffix of their samples (file_stem)
HF_FILTER_SUFFIX = {"require": "_hf", "veto": "_nohf"}


def file_stem(process, mH, seed, chunk, sample=""):
    """The generator's file name (without .root, .json) of chunk ``chunk`` of a run:
    ``<process>[_mH<m>][<sample>]_<seed>_<chunk>`` (the mass for the signal only; ``sample``: "_hf" or
    "_nohf" for the heavy-flavour filtered and vetoed samples); the studies read the chunk, hence the
    fold, from it."""
    mass = f"_mH{mH:g}" if process in SIGNAL_PROCESSES else ""
    return f"{process}{mass}{sample}_{seed}_{chunk}"


def run_stem(stem):
    """The run of a chunk's :func:`file_stem`: the stem without its ``_<chunk>`` (``qcd_hf_13_4`` -> ``qcd_hf_13``)."""
    return stem.rsplit("_", 1)[0]


EVENT_BRANCHES = ("event_id", "gen_seed", "process", "phase_space", "label", "weight", "xsec_fb", "acceptance", "mH",
                  "is_signal", "is_background", "met", "met_phi", "ht", "btag_weight_up", "btag_weight_down")

FATJET_FIELDS = ("pt", "eta", "phi", "energy", "mass", "sdmass", "tau1", "tau2", "tau3", "nparticles", "nbtag")
FATJET_PREFIXES = ("fj1", "fj2")

CONSTITUENT_FIELDS = ("px", "py", "pz", "energy", "deta", "dphi", "charge", "pid")

OBJECT_FIELDS = ("pt", "eta", "phi", "energy", "mass", "btag", "type", "mask")
# fixed slots of the 9 event-object tokens (obj_* branches); ``obj_type`` holds the slot index + 1
SUBJET_SLOTS = ("fj1_sj1", "fj1_sj2", "fj2_sj1", "fj2_sj2")  # two exclusive-kT subjets per fat jet
MAX_TAGS = len(SUBJET_SLOTS)  # b-tagged subjets of an event at most (fj1_nbtag + fj2_nbtag)
# truth tagging's b-tag classes by number of b-tagged subjets (the ``tag_class`` branch is the index):
# every selection ">= k tags" with k = 2, 3, 4 is a union of whole classes
TAG_CLASSES = ((0, 1), (2,), (3,), (4,))
OBJECT_SLOTS = ("fj1", "fj2", *SUBJET_SLOTS, "H_cand", "jet", "MET")
N_OBJECTS = len(OBJECT_SLOTS)


def fatjet_branches():
    return [f"{p}_{f}" for p in FATJET_PREFIXES for f in FATJET_FIELDS]


def constituent_branches():
    return [f"{p}_part_{f}" for p in FATJET_PREFIXES for f in CONSTITUENT_FIELDS]


def object_branches():
    return [f"obj_{f}" for f in OBJECT_FIELDS]


# jets whose truth flavour is written (``<jet>_flavour``): the four subjets and the extra small-R jet
FLAVOUR_JETS = (*SUBJET_SLOTS, "jet")


def flavour_branches():
    return [f"{jet}_flavour" for jet in FLAVOUR_JETS]


def all_branches():
    """Every branch the generator writes (a schema-conforming file must hold them)."""
    return (list(EVENT_BRANCHES) + fatjet_branches() + constituent_branches() + object_branches()
            + flavour_branches())
