"""The OBS 29 configuration ObsEnv writes into its private home: global.ini (obs-websocket on), the E2E profile's
basic.ini (video size and rate, x264 simple output) and service.json (custom RTMP server)."""

from __future__ import annotations

import json
from pathlib import Path

_GLOBAL_INI = """\
[General]
FirstRun=true
EnableAutoUpdates=false
ConfirmOnExit=false
[BasicWindow]
PreviewEnabled=false
[Basic]
Profile=E2E
ProfileDir=E2E
SceneCollection=E2E
SceneCollectionFile=E2E
[OBSWebSocket]
FirstLoad=false
ServerEnabled=true
ServerPort={ws_port}
AlertsEnabled=false
AuthRequired=true
ServerPassword={password}
"""

_BASIC_INI = """\
[General]
Name=E2E
[Video]
BaseCX={w}
BaseCY={h}
OutputCX={w}
OutputCY={h}
FPSType=2
FPSNum={fps}
FPSDen=1
[Output]
Mode=Simple
[SimpleOutput]
StreamEncoder=x264
VBitrate=200
ABitrate=64
Preset=ultrafast
UseAdvanced=true
x264Settings=keyint={fps}
[Audio]
SampleRate=48000
ChannelSetup=Stereo
"""


def write_configs(
    home: Path, *, ws_port: int, password: str, width: int, height: int, fps: int, rtmp_url: str, stream_key: str
) -> None:
    """Write the OBS config files under home/.config/obs-studio."""
    cfg = home / ".config" / "obs-studio"
    prof = cfg / "basic" / "profiles" / "E2E"
    prof.mkdir(parents=True, exist_ok=True)
    (cfg / "global.ini").write_text(_GLOBAL_INI.format(ws_port=ws_port, password=password))
    (prof / "basic.ini").write_text(_BASIC_INI.format(w=width, h=height, fps=fps))
    (prof / "service.json").write_text(
        json.dumps({"type": "rtmp_custom", "settings": {"server": rtmp_url, "key": stream_key}})
    )
