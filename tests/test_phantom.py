import csv

import nibabel as nib
import numpy as np

from glioma.data.phantom import SITES, generate_cohort, plan_site, render_subject
from glioma.data.phantom.cohort import cohort_sizes


def test_cohort_sizes_follow_the_study_scaled():
    assert cohort_sizes(SITES["phantom-a"], 1.0) == {"LGG": 76, "HGG": 259}
    assert cohort_sizes(SITES["phantom-b"], 1.0) == {"LGG": 37, "HGG": 187}
    assert cohort_sizes(SITES["phantom-b"], 0.01) == {"LGG": 8, "HGG": 8}


def test_render_is_deterministic_and_grades_differ():
    plans = plan_site("phantom-a", seed=3, scale=0.05)
    first, again = render_subject(plans[0]), render_subject(plans[0])
    np.testing.assert_array_equal(first[0], again[0])
    enhancing = {"LGG": [], "HGG": []}
    for plan in plans:
        _, seg = render_subject(plan)
        enhancing[plan.grade].append(bool((seg == 4).any()))
    # HGG nearly always enhance; most LGG do not, some do (the grades overlap).
    assert np.mean(enhancing["HGG"]) > 0.9
    assert np.mean(enhancing["LGG"]) < 0.6


def test_cohort_on_disk_in_both_layouts(tmp_path):
    inputs = generate_cohort(tmp_path, seed=1, scale=0.01, workers=2)
    brats_root, manifest = inputs["phantom-a"], inputs["phantom-b"]
    assert sorted(p.name for p in brats_root.iterdir()) == ["HGG", "LGG"]
    subject = next((brats_root / "LGG").iterdir())
    files = sorted(p.name.removeprefix(subject.name) for p in subject.iterdir())
    assert files == [f"_{m}.nii.gz" for m in ("flair", "seg", "t1", "t1ce", "t2")]
    with open(manifest) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 16 and {r["grade"] for r in rows} == {"LGG", "HGG"}
    # Sites differ as hospitals do: orientation, voxel size, storage type and mask convention.
    a = nib.load(next(subject.glob("*_t1.nii.gz")))
    b = nib.load(manifest.parent / rows[0]["t1"])
    assert nib.aff2axcodes(a.affine) == ("L", "P", "S") and a.get_data_dtype() == np.int16
    assert nib.aff2axcodes(b.affine) == ("P", "I", "R") and b.get_data_dtype() == np.uint16
    assert sorted(np.round(b.header.get_zooms(), 1)) == [1.5, 1.5, 4.5]
    seg_b = np.asarray(nib.load(manifest.parent / rows[0]["seg"]).dataobj)
    assert set(np.unique(seg_b)) <= {0, 1}


def test_cohort_is_reused(tmp_path):
    generate_cohort(tmp_path, seed=1, scale=0.01, workers=1)
    marker = tmp_path / "phantom.json"
    stamp = marker.stat().st_mtime_ns
    generate_cohort(tmp_path, seed=1, scale=0.01, workers=1)
    assert marker.stat().st_mtime_ns == stamp
