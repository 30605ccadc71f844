"""The MedMNIST catalogue: which files exist, where, their classes and checksums.

Entries come from MedMNIST v2 (``medmnist/info.py`` of the ``medmnist``
package, version 2.1.0; Yang et al., Sci Data 2023): the 28×28 single-label
2D datasets. ChestMNIST is left out because it is multi-label, which
:func:`medviz.data.npz.load_npz` does not support. :mod:`medviz.data.download`
fetches the files; :mod:`medviz.data.npz` recognises them by name.
"""

from __future__ import annotations

from dataclasses import dataclass

_ZENODO = "https://zenodo.org/record/6496656/files/{name}.npz?download=1"
_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)


@dataclass(frozen=True)
class MedmnistSource:
    """One downloadable MedMNIST file.

    Attributes:
        name: Key, e.g. ``"breastmnist"``.
        url: Download address.
        md5: Hex MD5 of the official file.
        title: Human title.
        class_names: Class names in label order (as in MedMNIST's ``info.py``).
        channels: Stored channels (1 or 3).
        licence: Licence of the data.
    """

    name: str
    url: str
    md5: str
    title: str
    class_names: tuple[str, ...]
    channels: int
    licence: str = "CC BY 4.0"


def _source(
    name: str, md5: str, title: str, classes: tuple[str, ...], channels: int
) -> MedmnistSource:
    return MedmnistSource(name, _ZENODO.format(name=name), md5, title, classes, channels)


MEDMNIST: dict[str, MedmnistSource] = {
    s.name: s
    for s in (
        _source(
            "pathmnist",
            "a8b06965200029087d5bd730944a56c1",
            "PathMNIST: colorectal cancer histology (9 tissue types)",
            (
                "adipose",
                "background",
                "debris",
                "lymphocytes",
                "mucus",
                "smooth muscle",
                "normal colon mucosa",
                "cancer-associated stroma",
                "colorectal adenocarcinoma epithelium",
            ),
            3,
        ),
        _source(
            "dermamnist",
            "0744692d530f8e62ec473284d019b0c7",
            "DermaMNIST: dermatoscopic skin lesions (HAM10000, 7 classes)",
            (
                "actinic keratoses and intraepithelial carcinoma",
                "basal cell carcinoma",
                "benign keratosis-like lesions",
                "dermatofibroma",
                "melanoma",
                "melanocytic nevi",
                "vascular lesions",
            ),
            3,
        ),
        _source(
            "octmnist",
            "c68d92d5b585d8d81f7112f81e2d0842",
            "OCTMNIST: retinal OCT (4 classes)",
            ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
            1,
        ),
        _source(
            "pneumoniamnist",
            "28209eda62fecd6e6a2d98b1501bb15f",
            "PneumoniaMNIST: paediatric chest X-ray, normal vs pneumonia",
            ("normal", "pneumonia"),
            1,
        ),
        _source(
            "retinamnist",
            "bd4c0672f1bba3e3a89f0e4e876791e4",
            "RetinaMNIST: fundus photographs, diabetic retinopathy grade 0-4",
            ("0", "1", "2", "3", "4"),
            3,
        ),
        _source(
            "breastmnist",
            "750601b1f35ba3300ea97c75c52ff8f6",
            "BreastMNIST: breast ultrasound, malignant vs normal/benign",
            ("malignant", "normal, benign"),
            1,
        ),
        _source(
            "bloodmnist",
            "7053d0359d879ad8a5505303e11de1dc",
            "BloodMNIST: blood cell microscopy (8 cell types)",
            (
                "basophil",
                "eosinophil",
                "erythroblast",
                "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
                "lymphocyte",
                "monocyte",
                "neutrophil",
                "platelet",
            ),
            3,
        ),
        _source(
            "tissuemnist",
            "ebe78ee8b05294063de985d821c1c34b",
            "TissueMNIST: kidney cortex cells (8 types)",
            (
                "Collecting Duct, Connecting Tubule",
                "Distal Convoluted Tubule",
                "Glomerular endothelial cells",
                "Interstitial endothelial cells",
                "Leukocytes",
                "Podocytes",
                "Proximal Tubule Segments",
                "Thick Ascending Limb",
            ),
            1,
        ),
        _source(
            "organamnist",
            "866b832ed4eeba67bfb9edee1d5544e6",
            "OrganAMNIST: abdominal CT, axial (11 organs)",
            _ORGANS,
            1,
        ),
        _source(
            "organcmnist",
            "0afa5834fb105f7705a7d93372119a21",
            "OrganCMNIST: abdominal CT, coronal (11 organs)",
            _ORGANS,
            1,
        ),
        _source(
            "organsmnist",
            "e5c39f1af030238290b9557d9503af9d",
            "OrganSMNIST: abdominal CT, sagittal (11 organs)",
            _ORGANS,
            1,
        ),
    )
}
"""Downloadable MedMNIST files by name; load one with ``load_dataset("medmnist:<name>")``."""
