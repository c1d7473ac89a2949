"""Reading clip after clip reuses freed frame memory (varec_cli/video/allocator.py), unless the user
set glibc's malloc parameters themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from varec_cli.video.allocator import user_chose_allocator

READS = r"""
import json, resource, sys
from varec_cli.video.allocator import keep_freed_frame_memory
from varec_cli.video.reader import read_clips

faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    read_clips(sys.argv[1], 16, (224, 224))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"pinned": keep_freed_frame_memory(), "faults": faults}))
"""


def read_in_child(clip, **environ) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(environ)
    done = subprocess.run([sys.executable, "-c", READS, str(clip)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_later_reads_of_a_720p_clip_reuse_memory_unless_the_user_set_malloc(real_clip):
    if real_clip.name != "bigbuckbunny.mp4":
        pytest.skip("a 720p clip, whose frame buffers are megabytes")
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            pytest.skip("not glibc")
    except (ValueError, OSError):
        pytest.skip("not glibc")
    ours = read_in_child(real_clip)
    # MALLOC_PERTURB_=0 changes nothing in glibc's allocator, but is the user's: glibc's defaults stay.
    glibcs = read_in_child(real_clip, MALLOC_PERTURB_="0")
    theirs = read_in_child(real_clip, GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert ours["pinned"] is True
    assert glibcs["pinned"] is False and theirs["pinned"] is False
    # Every read after the first, with glibc's own thresholds, faults its frame buffers in again
    # (thousands of 4 KiB pages); with varec's, they are reused.
    assert max(ours["faults"][2:]) * 4 < min(glibcs["faults"][1:]), (ours, glibcs)
    assert max(ours["faults"][2:]) * 4 < min(theirs["faults"][1:]), (ours, theirs)


@pytest.mark.parametrize(
    "environ, chosen",
    [
        ({}, False),
        ({"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=2048"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, True),
        ({"MALLOC_ARENA_MAX": "2"}, True),
        ({"MALLOCATOR": "x"}, False),
    ],
)
def test_user_choice_of_malloc_settings_is_recognised(environ, chosen):
    assert user_chose_allocator(environ) is chosen
