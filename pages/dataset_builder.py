"""Your data: build an image dataset from uploads, a zip or the camera; train on it at once."""

import streamlit as st

from cnn_core.data import builder
from cnn_core.errors import UserError
from ui.owndata_widgets import skipped_table
from ui.router import ensure_routed
from ui.widgets import show_user_error, thumbnails

ensure_routed()

st.title("Your data")
st.caption(
    "Make a dataset of your own images: one class per thing to recognise, a few dozen images "
    "each. Add them as files, a .zip of `<class>/<image>` folders, or camera shots. The dataset "
    "is an image folder in the data root, ready for Train and Data health at once."
)


def attempt(action, *args, done: str = ""):
    """Run a builder action; show a user error instead of raising. Returns its result."""
    try:
        result = action(*args)
    except UserError as exc:
        show_user_error(exc)
        return None
    if done:
        st.session_state["yd_done"] = done
    return result


def show_report(report) -> None:
    st.session_state["yd_done"] = report.summary()
    st.session_state["yd_skipped"] = report.skipped


if message := st.session_state.pop("yd_done", None):
    st.success(message, icon="✅")
skipped_table(st.session_state.pop("yd_skipped", []))

datasets = builder.list_datasets()
names = [d["name"] for d in datasets]
new_tab, zip_tab = st.tabs(["New dataset", "Import a zip"])
with new_tab:
    c1, c2 = st.columns(2)
    new_name = c1.text_input("Dataset name", key="yd_new_name", placeholder="e.g. my-pets")
    new_classes = c2.text_input(
        "Classes (comma-separated)", key="yd_new_classes", placeholder="cat, dog"
    )
    if st.button("Create dataset", key="yd_create", disabled=not new_name.strip()):
        classes = [c for c in new_classes.split(",") if c.strip()]
        if attempt(builder.create_dataset, new_name, classes, done=f"Created {new_name}."):
            st.session_state["yd_dataset"] = builder.sanitize_name(new_name)
            st.rerun()
with zip_tab:
    archive = st.file_uploader("Zip of <class>/<image> folders", type=["zip"], key="yd_zip")
    stem = archive.name.rsplit(".", 1)[0] if archive else ""
    zip_name = (
        st.text_input(
            "Into dataset (new or existing)",
            key="yd_zip_name",
            placeholder=stem or "the zip's name",
        ).strip()
        or stem
    )
    if st.button("Import zip", key="yd_import", disabled=archive is None or not zip_name):
        report = attempt(builder.import_zip, zip_name, archive.getvalue())
        if report:
            show_report(report)
            st.session_state["yd_dataset"] = report.name
            st.rerun()

if not names:
    st.info("No dataset of your own yet: create one or import a zip above.", icon="🗂️")
    st.stop()

if st.session_state.get("yd_dataset") not in names:
    st.session_state["yd_dataset"] = names[0]
name = st.selectbox("Dataset", names, key="yd_dataset")
info = next(d for d in datasets if d["name"] == name)
classes = list(info["classes"])

cols = st.columns([1, 1, 2])
cols[0].metric("Classes", len(classes))
cols[1].metric("Images", info["images"])
cols[2].caption(f"Folder for Train and Data health: `{info['data_dir']}` (dataset image-folder)")
actions = st.columns(3)
ready = len(classes) >= 2 and all(n > 0 for n in info["classes"].values())
if actions[0].button("🚀 Train on it", key="yd_train", disabled=not ready):
    st.session_state["t_dataset"] = "image-folder"
    st.session_state["t_data_dir"] = info["data_dir"]
    st.switch_page("pages/train.py")
if actions[1].button("🩺 Check its health", key="yd_health", disabled=not ready):
    st.session_state["dh_dataset"] = "image-folder"
    st.session_state["dh_data_dir"] = info["data_dir"]
    st.switch_page("pages/health.py")
actions[2].download_button(
    "⬇️ Download as zip",
    data=builder.export_zip(name),
    file_name=f"{name}.zip",
    mime="application/zip",
    key="yd_download",
)
if not ready:
    st.caption("Training needs at least two classes, each with at least one image.")

st.subheader("Add images")
c1, c2 = st.columns([2, 1])
new_class = c2.text_input("New class", key="yd_class_name")
if c2.button("Add class", key="yd_add_class", disabled=not new_class.strip()) and attempt(
    builder.add_class, name, new_class, done=f"Added class {new_class}."
):
    st.rerun()
if not classes:
    st.info("Add a class first.")
    st.stop()
target = c1.selectbox("Class", classes, key="yd_target")
files_tab, camera_tab = c1.tabs(["Files", "Camera"])
with files_tab:
    uploads = st.file_uploader(
        "Images",
        accept_multiple_files=True,
        key="yd_files",
        type=["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"],
    )
    if st.button("Add files", key="yd_add_files", disabled=not uploads):
        report = attempt(
            builder.add_images, name, target, [(u.name, u.getvalue()) for u in uploads]
        )
        if report:
            show_report(report)
            st.rerun()
with camera_tab:
    st.caption("One image per shot: take it, and it is added to the chosen class.")
    shot = st.camera_input("Camera", key="yd_camera")
    if shot is not None and st.session_state.get("yd_last_shot") != shot.file_id:
        st.session_state["yd_last_shot"] = shot.file_id
        report = attempt(builder.add_images, name, target, [("camera.jpg", shot.getvalue())])
        if report:
            show_report(report)
            st.rerun()

st.subheader("Classes")
images = builder.list_images(name)
for cls in classes:
    files = images.get(cls, [])
    with st.expander(f"{cls} — {len(files)} image(s)"):
        if files:
            thumbnails(files[:24])
        c1, c2, c3 = st.columns(3)
        renamed = c1.text_input("Rename to", key=f"yd_rename_{cls}")
        if c1.button("Rename", key=f"yd_do_rename_{cls}", disabled=not renamed.strip()) and attempt(
            builder.rename_class, name, cls, renamed, done=f"Renamed {cls}."
        ):
            st.rerun()
        if files:
            doomed = c2.selectbox("Image", [p.name for p in files], key=f"yd_image_{cls}")
            if c2.button("Delete image", key=f"yd_delete_image_{cls}"):
                attempt(builder.delete_image, name, cls, doomed, done=f"Deleted {cls}/{doomed}.")
                st.rerun()
        if c3.button("Delete class", key=f"yd_delete_class_{cls}"):
            attempt(builder.delete_class, name, cls, done=f"Deleted class {cls}.")
            st.rerun()

with st.expander("Delete this dataset"):
    sure = st.checkbox(f"Yes, delete {name} and all its images", key="yd_sure")
    if st.button("Delete dataset", key="yd_delete", disabled=not sure):
        attempt(builder.delete_dataset, name, done=f"Deleted {name}.")
        st.session_state.pop("yd_dataset", None)
        st.rerun()
