"""Ardour as a test host: a headless session rendered through a plugin and exported.

Drives Debian's Ardour 7 (``apt-get install ardour``) through its Lua session tool
``ardour7-lua`` with the "None (Dummy)" audio backend: no sound card, no JACK, no GUI.
``render_through_ardour`` makes a session at a sample rate and period (the engine's buffer
size), puts an audio file on a track, inserts a plugin on the track, exports the session range
as a 32-bit float WAV at the session rate and returns what Ardour reported (the plugin's
latency, the block size, the session range...).

The steps, each in its own ardour7-lua process (``workdir/<step>.lua``):

1. ``create``: the Dummy backend at ``period`` frames, a new session at ``rate``, one audio
   track with ``channels`` inputs and outputs (inputs left unconnected), saved.
2. (Python) the file added to the session file as an *embedded* source, as Ardour's "embed
   file" import records it: one ``<Source>`` per channel (the absolute path as name, the
   channel as ``channel``) and a whole-file ``<Region>``. Ardour 7.3's Lua bindings have no
   import call (the GUI's ``Editor:do_import`` needs the editor).
3. ``build``: the session loaded, a copy of the whole-file region put on the track at 0 inside
   an "insert file" undo operation (only then does Ardour extend the session range to it, as
   after an import), its fades switched off (Ardour gives every new region 64-sample fades),
   the plugin found by name or URI (``ARDOUR.LuaAPI.new_plugin``) and inserted pre-fader; the
   latencies Ardour computed reported; saved.
4. ``export``: the saved session loaded at ``period`` and its session range exported through
   the master bus with ``Session:simple_export`` and a float-WAV preset written to the temp
   config folder (Ardour's "WAV" presets are 16-bit with shaped dither; SimpleExport's default
   is CD: 16-bit, 44.1 kHz). ``exporter="ardour7-export"`` uses Debian's export tool instead
   (it has no period option: the Dummy backend's default, 1024).

Quirks met on Ardour 7.3 (Debian 1:7.3.0+ds0-1), each handled here:

* Every script does its work in ``main()`` and collects garbage before ``close_session()``: a
  Lua reference to a track or processor that outlives the session is destroyed by the
  interpreter's teardown after the session, a use-after-free (valgrind: ``IO::~IO`` reading
  the deleted session).
* The export runs in a process of its own, on the saved session. ``SimpleExport::run_export``
  appears to race with the engine thread at the end of an export (it polls the export status every
  10 ms, ardour7-export every second; both then finalize the export while the engine thread may
  still be stopping it): ardour7-lua dies of heap corruption (SIGABRT/SIGSEGV, found in
  ``ExportGraphBuilder::reset``, ``~ExportProfileManager``, ``Session::save_state``) in about
  one export in four with Ardour's own a-Delay LV2 (22 of 80 here; valgrind, which serialises
  the threads, finds nothing), with STAR mostly at period 64. An export process killed by a
  signal is therefore run again (at most 5 tries); the result reports ``export_attempts`` and
  the crashes (``export_crashes``). A Lua error or an exit status is never retried.
* Ardour connects a new track's outputs to the master bus asynchronously (its auto-connect
  thread). Under CPU load the create step saved the session before that happened: every
  export of such a session was all zero (6 of the 10 STAR cases with two busy processes beside the
  test), although a debug log inside the plugin showed it fed the file and returning sound in
  every block. The create step connects the track to the master itself and checks it (then
  0 silent exports in 11 cases under the same load).
* Ardour only extends the session range for regions added inside certain undo operations
  (``Session::playlist_region_added``: "insert file", "paste", ...), named with translated
  strings: the processes run with LANGUAGE=C.

Plugin formats: ``FORMATS`` maps a format to its Lua plugin type and the environment variable
of the folder Ardour searches (``plugin_path``'s parent, so keep only plugins there). VST3:
libardour lists VST3 plugins only from the cache that its scanner (``ardour-vst3-scanner``, run
by the GUI's plugin scan) writes, and the Lua tool never scans, so the scanner is run on the
bundle first; Ardour then finds it along ``VST3_PATH``, which Ardour copies into its config key
``plugin-path-vst3`` when the user config does not set it (the temp config never does), besides
``~/.vst3:/usr/local/lib/vst3:/usr/lib/vst3``. LV2: Ardour (lilv) scans ``LV2_PATH`` at every
start. Every other plugin search path (LV2_PATH, LADSPA_PATH, LXVST_PATH, VST_PATH, VST3_PATH)
points at an empty folder, so the system's plugins are not scanned.

HOME and the XDG folders point into ``workdir``: Ardour writes its config, caches and plugin
cache there (``.config/ardour7``, ``.cache/ardour7/vst``), never in the user's home.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

LUA_TOOL = "ardour7-lua"
EXPORT_TOOL = "ardour7-export"
DUMMY_DEFAULT_PERIOD = 1024  # the Dummy backend's buffer size when nobody sets one
# Ardour 7's timeline unit: positions in the session file are superclock ticks ("a" prefix)
SUPERCLOCK_TICKS_PER_SECOND = 282240000
MARK = "@@ardour-host "
SESSION = "star"
TRACK = "STAR"
EXPORT_TRIES = 5
# a float WAV at the session rate, no dither, no normalisation, no silence trimming
FORMAT_ID = "5f2a9c1e-7d43-4b8e-9a61-3c0d8e2f4b17"
PRESET_ID = "b8e4d7a2-1c69-4f35-8e0b-6a9d2c7f3e51"


@dataclass(frozen=True)
class PluginFormat:
    lua_type: str     # ARDOUR.PluginType.<lua_type>
    path_env: str     # the variable naming the folder that Ardour searches for the plugin
    default_id: str   # STAR's name or URI for ARDOUR.LuaAPI.new_plugin
    scan: bool        # run ardour-vst3-scanner on the bundle first (Ardour's plugin cache)


FORMATS = {
    "vst3": PluginFormat("VST3", "VST3_PATH", "STAR", scan=True),
    "lv2": PluginFormat("LV2", "LV2_PATH", "https://starplugin.org/lv2/star", scan=False),
}
# search paths that would otherwise make Ardour scan the system's plugins
PLUGIN_PATH_VARIABLES = ("LV2_PATH", "VST3_PATH", "LADSPA_PATH", "LXVST_PATH", "VST_PATH")


class ArdourError(RuntimeError):
    pass


def ardour_available() -> bool:
    """ardour7-lua on PATH (Debian's ``ardour`` package)."""
    return shutil.which(LUA_TOOL) is not None


def ardour_libdir() -> Path:
    """Ardour's private library folder (luasession, the scanners, libardour), read from the
    ardour7-lua wrapper script: /usr/lib/ardour7 on Debian."""
    tool = shutil.which(LUA_TOOL)
    if tool is None:
        raise ArdourError(f"{LUA_TOOL} not found on PATH (apt-get install ardour)")
    try:
        text = Path(tool).read_text(errors="replace")
    except OSError:
        text = ""
    match = re.search(r'exec\s+"?(\S+?)/luasession', text)
    return Path(match.group(1)) if match else Path("/usr/lib/ardour7")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def host_env(workdir: Path, env: dict | None = None, plugin_format: str | None = None,
             plugin_dir: Path | None = None) -> dict:
    """``env`` (default: os.environ) with HOME and the XDG folders inside ``workdir`` and the
    plugin search paths set: ``plugin_dir`` for the format's variable, an empty folder for the
    others."""
    workdir = Path(workdir)
    home, empty = workdir / "home", workdir / "no-plugins"
    for folder in (home, empty):
        folder.mkdir(parents=True, exist_ok=True)
    out = dict(os.environ if env is None else env)
    out.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_STATE_HOME=str(home / ".local/state"), LANGUAGE="C", LC_ALL="C.UTF-8")
    for name in PLUGIN_PATH_VARIABLES:
        out[name] = str(empty)
    if plugin_format is not None:
        out[FORMATS[plugin_format].path_env] = str(plugin_dir)
    out.setdefault("OMP_NUM_THREADS", "1")
    return out


def _run(cmd, env: dict, timeout: float, what: str, cwd=None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, check=False)
    except subprocess.TimeoutExpired as exc:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        raise ArdourError(f"{what}: timed out after {timeout:.0f} s\n--- stdout tail:\n"
                          f"{_tail(text(exc.stdout))}\n--- stderr tail:\n"
                          f"{_tail(text(exc.stderr))}") from None


def _status(returncode: int) -> str:
    return f"killed by signal {-returncode}" if returncode < 0 else f"exit {returncode}"


class LuaFailure(ArdourError):
    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


def _lua(script: str, args, env: dict, workdir: Path, timeout: float, what: str) -> dict:
    """Run ``script`` (written to ``workdir/<what>.lua``) in ardour7-lua; its ``@@ardour-host
    key=value`` lines as a dict. Raises with Ardour's output tails unless it printed done=1."""
    path = Path(workdir) / f"{what}.lua"
    path.write_text(script)
    proc = _run([LUA_TOOL, path, *args], env, timeout, f"{LUA_TOOL} {path.name}", cwd=workdir)
    values = {}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK) and "=" in line:
            key, _, value = line[len(MARK):].partition("=")
            values[key.strip()] = value.strip()
    if proc.returncode != 0 or values.get("done") != "1" or "error" in values:
        lua_errors = [ln for ln in proc.stdout.splitlines() if ln.startswith("Error:")]
        reason = values.get("error") or (lua_errors[-1] if lua_errors else "did not finish")
        raise LuaFailure(f"{LUA_TOOL} {path.name} failed ({_status(proc.returncode)}): "
                         f"{reason}\n--- stdout tail:\n{_tail(proc.stdout)}"
                         f"\n--- stderr tail:\n{_tail(proc.stderr)}", proc.returncode)
    return values


def scan_vst3(bundle: Path, env: dict, timeout: float = 120) -> None:
    """Write Ardour's VST3 cache entry for ``bundle`` (what the GUI's plugin scan does)."""
    libdir = ardour_libdir()
    scanner = libdir / "ardour-vst3-scanner"
    if not scanner.exists():
        raise ArdourError(f"{scanner} not found (Ardour built without VST3 support?)")
    scan_env = dict(env)
    scan_env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libdir), env.get("LD_LIBRARY_PATH", "")) if p)
    proc = _run([scanner, "-f", bundle], scan_env, timeout, "ardour-vst3-scanner")
    if proc.returncode != 0:
        raise ArdourError(f"ardour-vst3-scanner failed on {bundle} ({_status(proc.returncode)})"
                          f":\n{_tail(proc.stdout + proc.stderr)}")


def write_export_preset(env: dict) -> None:
    """A float WAV format at the session rate and a preset using it, in Ardour's user config
    folder (``$XDG_CONFIG_HOME/ardour7/export``), where the export profile manager finds them."""
    folder = Path(env["XDG_CONFIG_HOME"]) / "ardour7" / "export"
    folder.mkdir(parents=True, exist_ok=True)
    silence = ('<Trim enabled="false"/><Add enabled="false"><Duration format="Samples" '
               'samples="0"/></Add>')
    (folder / "star-test-float.format").write_text(f"""\
<?xml version="1.0" encoding="UTF-8"?>
<ExportFormatSpecification name="STAR test float" id="{FORMAT_ID}" with-cue="false" \
with-toc="false" with-mp4chaps="false" command="" analyse="false" soundcloud-upload="false">
  <Encoding id="F_WAV" type="T_Sndfile" extension="wav" name="WAV" has-sample-format="true" \
channel-limit="256"/>
  <SampleRate rate="SR_Session"/>
  <SRCQuality quality="SRC_SincBest"/>
  <EncodingOptions>
    <Option name="sample-format" value="SF_Float"/>
    <Option name="dithering" value="D_None"/>
    <Option name="tag-metadata" value="false"/>
    <Option name="tag-support" value="false"/>
    <Option name="broadcast-info" value="false"/>
  </EncodingOptions>
  <Processing>
    <Normalize enabled="false" loudness="false" dbfs="0" lufs="-23" dbtp="-1"/>
    <Silence><Start>{silence}</Start><End>{silence}</End></Silence>
  </Processing>
</ExportFormatSpecification>
""")
    (folder / "star-test-float.preset").write_text(f"""\
<?xml version="1.0" encoding="UTF-8"?>
<ExportPreset id="{PRESET_ID}" name="STAR test float">
  <ExportFormat id="{FORMAT_ID}"/>
  <ExportFilename>
    <Folder relative="1" path="export"/>
    <Field name="label" enabled="0"/>
    <Field name="session" enabled="0"/>
    <Field name="snapshot" enabled="0"/>
    <Field name="timespan" enabled="1"/>
    <Field name="revision" enabled="0"/>
    <Field name="time" enabled="0" value="T_None"/>
    <Field name="date" enabled="0" value="D_None"/>
  </ExportFilename>
</ExportPreset>
""")


# Every script does its work in main(); the references to session objects die with main's
# locals and a garbage collection *before* close_session() (see the module docstring).
LUA_PROLOGUE = r"""
local function out(k, v) print("@@ardour-host " .. k .. "=" .. tostring(v)) end
local function fail(msg) error({msg = msg}) end
local function open_session(dir, name, period, rate)
  if not AudioEngine:set_backend("None (Dummy)", "", "") then fail("no Dummy backend") end
  if AudioEngine:set_buffer_size(period) ~= 0 then fail("set_buffer_size failed") end
  if rate then
    if not create_session(dir, name, rate) then fail("create_session failed") end
  elseif not load_session(dir, name) then
    fail("load_session failed")
  end
  out("rate", Session:nominal_sample_rate())
  out("block", Session:get_block_size())
end
local function star_track()
  local route = Session:route_by_name("STAR")
  if route:isnil() or route:to_track():isnil() then fail("no track STAR") end
  return route:to_track()
end
"""

LUA_EPILOGUE = r"""
local ok, err = pcall(main)
main = nil
collectgarbage()
collectgarbage()
close_session()
if ok then
  out("done", 1)
else
  out("error", type(err) == "table" and err.msg or tostring(err))
end
"""

CREATE_LUA = LUA_PROLOGUE + r"""
function main()
  local dir, name = arg[1], arg[2]
  local rate, period, channels = tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  open_session(dir, name, period, rate)
  local tracks = Session:new_audio_track(channels, channels, nil, 1, "STAR",
                                         ARDOUR.PresentationInfo.max_order,
                                         ARDOUR.TrackMode.Normal, false)
  if tracks:size() ~= 1 then fail("new_audio_track failed") end
  -- Ardour connects a new track to the master bus later, from another thread: under CPU
  -- load the session was saved before that (its exports all silent). Connect it here.
  local outputs, master = tracks:front():output(), Session:master_out():input()
  local masters = master:n_ports():n_audio()
  for i = 0, outputs:n_ports():n_audio() - 1 do
    local port = outputs:nth(i)
    if not port:connected() then port:connect(master:nth(i % masters):name()) end
    if not port:connected() then fail("cannot connect the track to the master bus") end
  end
  if Session:save_state("", false, false, false) ~= 0 then fail("save_state failed") end
end
""" + LUA_EPILOGUE

BUILD_LUA = LUA_PROLOGUE + r"""
function main()
  local dir, name, period = arg[1], arg[2], tonumber(arg[3])
  local plugin_type, plugin_id, region_id = arg[4], arg[5], arg[6]
  open_session(dir, name, period)
  local track = star_track()

  -- the embedded file's whole-file region; a copy of it on the track at 0, inside an
  -- "insert file" operation like the editor's import (then Ardour sets the session range)
  local whole = ARDOUR.RegionFactory.region_by_id(PBD.ID(region_id))
  if whole:isnil() then fail("the embedded region is missing (source file not found?)") end
  out("source_frames", whole:length():samples())
  local playlist = track:playlist()
  Session:begin_reversible_command("insert file")
  playlist:to_stateful():clear_changes()
  local region = ARDOUR.RegionFactory.clone_region(whole, true, false)
  playlist:add_region(region, Temporal.timepos_t(0), 1, false, 0, 0, false)
  Session:add_stateful_diff_command(playlist:to_statefuldestructible())
  Session:commit_reversible_command(nil)
  local audio = region:to_audioregion()
  audio:set_fade_in_active(false)
  audio:set_fade_out_active(false)
  out("region_channels", audio:n_channels())
  out("region_start", region:position():samples())
  out("region_frames", region:length():samples())

  local ptype = ARDOUR.PluginType[plugin_type]
  if ARDOUR.LuaAPI.new_plugin_info(plugin_id, ptype):isnil() then
    local known = {}
    for p in ARDOUR.LuaAPI.list_plugins():iter() do
      if p.type == ptype then known[#known + 1] = p.name .. " <" .. p.unique_id .. ">" end
    end
    fail(plugin_type .. " plugin '" .. plugin_id .. "' not found; Ardour lists: " ..
         (#known > 0 and table.concat(known, ", ") or "none"))
  end
  local proc = ARDOUR.LuaAPI.new_plugin(Session, plugin_id, ptype, "")
  if proc:isnil() then fail("new_plugin failed for '" .. plugin_id .. "'") end
  if track:add_processor_by_index(proc, 0, nil, true) ~= 0 then fail("add_processor failed") end
  local insert = proc:to_insert()
  out("plugin_name", proc:name())
  out("plugin_inputs", insert:input_streams():n_audio())
  out("plugin_outputs", insert:output_streams():n_audio())
  out("plugin_instances", insert:get_count())
  -- a few engine cycles: Ardour recomputes the latency compensation after the change
  ARDOUR.LuaAPI.wait_for_process_callback(8, 5)
  out("plugin_latency", insert:signal_latency())
  out("track_latency", track:signal_latency())
  local range = Session:locations():session_range_location()
  if range == nil then fail("no session range after adding the region") end
  if Session:save_state("", false, false, false) ~= 0 then fail("save_state failed") end
end
""" + LUA_EPILOGUE

EXPORT_LUA = LUA_PROLOGUE + r"""
function main()
  local dir, name, period = arg[1], arg[2], tonumber(arg[3])
  local folder, file, preset = arg[4], arg[5], arg[6]
  open_session(dir, name, period)
  local track = star_track()
  local plugin = track:nth_plugin(0)
  if plugin:isnil() then fail("the plugin is gone from the saved session") end
  out("export_plugin_latency", plugin:to_insert():signal_latency())
  out("export_track_latency", track:signal_latency())
  local range = Session:locations():session_range_location()
  if range == nil then fail("the saved session has no session range") end
  out("range_start", range:start():samples())
  out("range_end", range:_end():samples())
  local export = Session:simple_export()
  export:set_folder(folder)
  export:set_name(file)
  if not export:set_preset(preset) then fail("export preset " .. preset .. " not found") end
  if not export:check_outputs() then fail("nothing to export (no master bus?)") end
  if not export:run_export() then fail("export failed") end
  out("xruns", Session:get_xrun_count())
end
""" + LUA_EPILOGUE


def _superclock(frames: int, rate: int) -> str:
    ticks, rest = divmod(frames * SUPERCLOCK_TICKS_PER_SECOND, rate)
    if rest:
        raise ArdourError(f"{frames} frames at {rate} Hz are no whole number of superclocks")
    return f"a{ticks}"


def embed_audio_file(session_file: Path, wav: Path, rate: int) -> str:
    """Add ``wav`` to a saved session the way Ardour's "embed" import records it: one
    ``<Source>`` per channel (the file's absolute path as its name) and a whole-file
    ``<Region>`` over them. Returns the region's id."""
    info = sf.info(str(wav))
    if info.samplerate != rate:
        raise ArdourError(f"{wav} is at {info.samplerate} Hz, the session at {rate} Hz")
    tree = ET.parse(session_file)
    root = tree.getroot()
    sources, regions = root.find("Sources"), root.find("Regions")
    if sources is None or regions is None or root.get("id-counter") is None:
        raise ArdourError(f"{session_file}: no <Sources>/<Regions>/id-counter (not an "
                          "Ardour 7 session?)")
    counter = int(root.get("id-counter"))
    ids = []
    for channel in range(info.channels):
        counter += 1
        ids.append(str(counter))
        ET.SubElement(sources, "Source", {
            "name": str(Path(wav).resolve()), "type": "audio", "flags": "", "id": ids[-1],
            "natural-position": "a0", "captured-for": "", "channel": str(channel),
            "origin": "", "gain": "1"})
    counter += 1
    region_id = str(counter)
    attrs = {"name": Path(wav).stem, "muted": "0", "opaque": "1", "locked": "0",
             "video-locked": "0", "automatic": "0", "whole-file": "1", "import": "1",
             "external": "1", "sync-marked": "0", "left-of-split": "0", "right-of-split": "0",
             "hidden": "0", "position-locked": "0", "valid-transients": "0", "start": "a0",
             "length": f"{_superclock(info.frames, rate)}@a0", "sync-position": "a0",
             "ancestral-start": "a0", "ancestral-length": "a0@a0", "stretch": "1",
             "shift": "1", "layering-index": "0", "envelope-active": "0",
             "default-fade-in": "0", "default-fade-out": "0", "fade-in-active": "0",
             "fade-out-active": "0", "scale-amplitude": "1", "id": region_id, "type": "audio",
             "first-edit": "nothing", "channels": str(info.channels)}
    for channel, source in enumerate(ids):
        attrs[f"source-{channel}"] = source
        attrs[f"master-source-{channel}"] = source
    ET.SubElement(regions, "Region", attrs)
    root.set("id-counter", str(counter + 1))
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)
    return region_id


def _numbers(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if key == "done":
            continue
        for kind in (int, float):
            try:
                out[key] = kind(value)
                break
            except ValueError:
                pass
        else:
            out[key] = value
    return out


def _export(exporter: str, session_dir: Path, period: int, wav_out: Path, env: dict,
            workdir: Path, timeout: float, info: dict) -> None:
    """Export the session range into ``wav_out`` with ``exporter``, retrying an export process
    killed by a signal (module docstring); ``info`` gets what the exporter reported."""
    crashes = []
    export_dir = workdir / "export"
    for attempt in range(1, EXPORT_TRIES + 1):
        if export_dir.exists():
            shutil.rmtree(export_dir)
        export_dir.mkdir(parents=True)
        try:
            if exporter == "lua":
                info.update(_numbers(_lua(EXPORT_LUA, [session_dir, SESSION, period,
                                                      export_dir, "export", PRESET_ID],
                                          env, workdir, timeout, "export")))
            else:
                proc = _run([EXPORT_TOOL, "-b", "float", "-o", export_dir / "export.wav",
                             session_dir, SESSION], env, timeout, EXPORT_TOOL, cwd=workdir)
                if proc.returncode != 0:
                    raise LuaFailure(f"{EXPORT_TOOL} failed ({_status(proc.returncode)})\n"
                                     f"--- output tail:\n{_tail(proc.stdout + proc.stderr)}",
                                     proc.returncode)
                info["block"] = None  # ardour7-export does not say; the Dummy default
        except LuaFailure as exc:
            if exc.returncode >= 0 or attempt == EXPORT_TRIES:
                if crashes:
                    raise ArdourError(f"{exc}\n(earlier export tries crashed: {crashes})") \
                        from None
                raise
            crashes.append(_status(exc.returncode))
            continue
        exported = export_dir / "export.wav"
        if not exported.exists():
            raise ArdourError(f"Ardour reported an export, but {exported} is missing (found "
                              f"{sorted(p.name for p in export_dir.iterdir())})")
        break
    info["export_attempts"] = attempt
    info["export_crashes"] = crashes

    Path(wav_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exported, wav_out)


def render_through_ardour(plugin_format: str, plugin_path: Path, wav_in: Path, wav_out: Path,
                          rate: int, period: int, channels: int, workdir: Path,
                          env: dict | None = None, plugin_id: str | None = None,
                          exporter: str = "lua", timeout: float = 300) -> dict:
    """``wav_in`` on a ``channels``-channel track with the plugin at ``plugin_path`` on it, in a
    headless Ardour session at ``rate`` Hz and ``period`` frames; the session range exported
    through the master bus (float WAV at the session rate) to ``wav_out``.

    ``plugin_path``'s folder becomes the format's search path (keep only plugins there);
    ``plugin_id`` is the plugin's name or URI (default: STAR's, ``FORMATS``); ``env`` is the
    environment of the plugin (e.g. STAR_MODEL_DIR), default os.environ, with HOME and XDG_*
    replaced by folders in ``workdir``. ``exporter``: "lua" (Session:simple_export, at
    ``period``) or "ardour7-export" (only at the Dummy backend's default period, 1024).

    Returns what Ardour reported (numbers as int/float): ``plugin_latency`` (the insert's
    latency after insertion) and ``export_plugin_latency`` (after reloading the session),
    ``track_latency``, ``block`` (the export's buffer size), ``rate``, ``range_start`` /
    ``range_end`` (the session range), ``region_start`` / ``region_frames``,
    ``plugin_name``/``plugin_inputs``/``plugin_outputs``/``plugin_instances``,
    ``export_attempts`` / ``export_crashes``, ``seconds`` per step and ``session_file``."""
    if plugin_format not in FORMATS:
        raise ValueError(f"unknown plugin format {plugin_format!r}: one of {sorted(FORMATS)}")
    if exporter not in ("lua", EXPORT_TOOL):
        raise ValueError(f"exporter: 'lua' or {EXPORT_TOOL!r}, not {exporter!r}")
    if exporter == EXPORT_TOOL and period != DUMMY_DEFAULT_PERIOD:
        raise ValueError(f"{EXPORT_TOOL} runs the Dummy backend at {DUMMY_DEFAULT_PERIOD} "
                         f"frames, not {period}")
    fmt = FORMATS[plugin_format]
    workdir, plugin_path = Path(workdir).resolve(), Path(plugin_path).resolve()
    wav_in = Path(wav_in).resolve()
    if not plugin_path.exists():
        raise ArdourError(f"plugin not found: {plugin_path}")
    if sf.info(str(wav_in)).channels != channels:
        raise ArdourError(f"{wav_in} has {sf.info(str(wav_in)).channels} channels, the track "
                          f"{channels}")
    workdir.mkdir(parents=True, exist_ok=True)
    run_env = host_env(workdir, env, plugin_format, plugin_path.parent)
    write_export_preset(run_env)
    seconds, info = {}, {}

    t = time.perf_counter()
    if fmt.scan:
        scan_vst3(plugin_path, run_env)
    seconds["scan"] = time.perf_counter() - t

    session_dir = workdir / "session"
    if session_dir.exists():
        shutil.rmtree(session_dir)
    t = time.perf_counter()
    created = _lua(CREATE_LUA, [session_dir, SESSION, rate, period, channels], run_env,
                   workdir, timeout, "create")
    if int(created["rate"]) != rate or int(created["block"]) != period:
        raise ArdourError(f"Ardour made a session at {created['rate']} Hz, block "
                          f"{created['block']} (asked for {rate} Hz, {period})")
    region_id = embed_audio_file(session_dir / f"{SESSION}.ardour", wav_in, rate)
    seconds["create"] = time.perf_counter() - t

    t = time.perf_counter()
    info.update(_numbers(_lua(BUILD_LUA, [session_dir, SESSION, period, fmt.lua_type,
                                          plugin_id or fmt.default_id, region_id],
                              run_env, workdir, timeout, "build")))
    seconds["build"] = time.perf_counter() - t

    t = time.perf_counter()
    _export(exporter, session_dir, period, Path(wav_out), run_env, workdir, timeout, info)
    seconds["export"] = time.perf_counter() - t
    info["seconds"] = seconds
    info["session_file"] = str(session_dir / f"{SESSION}.ardour")
    return info


if __name__ == "__main__":  # python tests/ardour_host.py vst3|lv2 PLUGIN IN.wav OUT.wav [PERIOD]
    import sys

    fmt_, plugin_, src_, dst_ = sys.argv[1:5]
    period_ = int(sys.argv[5]) if len(sys.argv) > 5 else DUMMY_DEFAULT_PERIOD
    src_info = sf.info(src_)
    print(json.dumps(render_through_ardour(
        fmt_, Path(plugin_), Path(src_), Path(dst_), src_info.samplerate, period_,
        src_info.channels, Path(dst_).parent / "ardour-work"), indent=1))
