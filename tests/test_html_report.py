"""The study's HTML report labels each plot by what it shows (multiscale/study/html_report.py)."""

from multiscale.study.html_report import PLOT_TITLES, caption


def test_each_limit_plot_has_its_own_caption():
    limits = ["limit_vs_mass", "limit_vs_mass_no_mc_stat", "limit_vs_mass_syst"]
    captions = [caption(stem) for stem in limits]
    assert len(set(captions)) == 3
    assert "with the background MC statistical" in captions[0]
    assert "without" in captions[1] and "systematic" in captions[2]


def test_the_roc_caption_names_its_mass_and_unknown_plots_their_file():
    assert caption("roc_mH1000") == "ROC curves at m_H = 1000 GeV"
    assert caption("something_new") == "something_new"
    assert all(caption(stem) == text for stem, text in PLOT_TITLES.items())

