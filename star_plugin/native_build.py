"""Build the native hosts in ``native/`` (the C++ engine, its CLI, optionally the VST3 plugin and
the CLAP plugin with its test host).

The wheel stays pure Python; this is an optional step for a source checkout (see
docs/NATIVE.md). :func:`build_native` finds or fetches the ONNX Runtime C/C++ headers, links
against the shared library shipped in the installed ``onnxruntime`` wheel (copied beside the
built binaries, found through RUNPATH ``$ORIGIN``), runs CMake and returns the built paths.

Headers, in order: ``$STAR_ORT_INCLUDE_DIR``; headers cached in the build folder; Debian's
``/usr/include/onnxruntime`` (``libonnxruntime-dev``, trixie and later); else they are fetched:
``apt-get download libonnxruntime-dev`` from a temporary Debian trixie source list kept in the
build folder (the system's apt configuration is not touched) and unpacked with ``dpkg-deb``.
The headers are MIT-licensed; a C API version older than the wheel's library is fine.

Every failure is a :class:`NativeBuildError` with a one-line message (missing cmake or C++
compiler, no onnxruntime wheel, a failed fetch or compile with the log file named).

``add_arguments(parser)`` / ``run(args)`` are the ``star plugin build`` command, ready to be
wired into ``star_plugin.cli``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from .errors import StarError
from .version import __version__

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "native"
# $STAR_NATIVE_BUILD_DIR: a second tree (e.g. one per checkout or compiler) beside the default
DEFAULT_BUILD_DIR = Path(os.environ.get("STAR_NATIVE_BUILD_DIR") or ROOT / "build" / "native")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HEADERS_SUITE = "trixie"
HEADERS_PACKAGE = "libonnxruntime-dev"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class NativeBuildError(StarError):
    """The native build cannot run or failed; the message is one line."""


@dataclass(frozen=True)
class NativeBuild:
    build_dir: Path
    cli: Path            # star-engine-cli
    ort_library: Path    # libonnxruntime.so.1 beside the binaries
    ort_headers: Path
    vst3: Optional[Path] = None  # STAR.vst3 bundle when the plugin was built
    lv2: Optional[Path] = None   # STAR.lv2 bundle, built with the VST3 from the same processor
    clap: Optional[Path] = None  # STAR.clap (the same processor); its folder holds the ORT
    # library, model/ and textures/
    clap_host: Optional[Path] = None  # star-clap-host, the minimal CLAP host the tests use
    lv2_host: Optional[Path] = None  # star-lv2-host (lilv), built when liblilv-dev is installed


def _which_or_fail(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise NativeBuildError(f"building the native engine needs {tool} (on Debian/Ubuntu: "
                               f"sudo apt-get install {package})")
    return path


SOXR_INCLUDE_DIRS = ("/usr/include", "/usr/local/include")  # + $CPATH: where soxr.h may be


def check_tools() -> dict:
    """{'cmake': path, 'cxx': path} or a NativeBuildError naming what is missing (cmake, a C++
    compiler, make or ninja, libsoxr's header)."""
    cmake = _which_or_fail("cmake", "cmake")
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx or not shutil.which(cxx):
        raise NativeBuildError("building the native engine needs a C++17 compiler: g++ not found "
                               "(on Debian/Ubuntu: sudo apt-get install g++)")
    if shutil.which("make") is None and shutil.which("ninja") is None:
        raise NativeBuildError("building the native engine needs make (sudo apt-get install "
                               "make) or ninja")
    if not any(d and (Path(d) / "soxr.h").is_file() for d in SOXR_INCLUDE_DIRS
               + tuple(os.environ.get("CPATH", "").split(os.pathsep))):
        raise NativeBuildError("building the native engine needs libsoxr, its host-rate "
                               "resampler (on Debian/Ubuntu: sudo apt-get install libsoxr-dev)")
    return {"cmake": cmake, "cxx": shutil.which(cxx)}


def ort_library() -> Path:
    """The ONNX Runtime shared library of the installed wheel (or ``$STAR_ORT_LIBRARY``)."""
    override = os.environ.get("STAR_ORT_LIBRARY")
    if override:
        if not Path(override).is_file():
            raise NativeBuildError(f"STAR_ORT_LIBRARY='{override}' does not exist")
        return Path(override)
    try:
        import onnxruntime
    except ImportError:
        raise NativeBuildError("the native engine links the onnxruntime wheel's library: pip "
                               "install 'star-plugin[onnx]'") from None
    capi = Path(onnxruntime.__file__).parent / "capi"
    found = sorted(capi.glob("libonnxruntime.so.*"), key=lambda p: len(p.name), reverse=True)
    if not found:
        raise NativeBuildError(f"'{capi}' holds no libonnxruntime.so.*: this onnxruntime wheel "
                               "does not ship the C API library (set STAR_ORT_LIBRARY)")
    return found[0]


def _run(cmd: List[str], log: Path, what: str, cwd: Optional[Path] = None,
         env: Optional[dict] = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        lines = [x.strip() for x in log.read_text(errors="replace").splitlines()]
        last = _first_error(lines)[:240]
        raise NativeBuildError(f"{what} failed (exit {proc.returncode}): {last} -- full log: "
                               f"{log}")


def _first_error(lines: List[str]) -> str:
    """The most telling line of a failed tool's log: the first compiler error, the message
    under the first CMake error, apt's first E: line, or else the last line."""
    for i, line in enumerate(lines):
        if line.startswith("CMake Error"):
            detail = next((x for x in lines[i + 1:] if x), "")
            return f"{line} {detail}".strip()
        if "error:" in line or line.startswith("E:"):
            return line
    return next((x for x in reversed(lines) if x), "(no output)")


def _fetch_headers(cache: Path, log: Path) -> Path:
    """apt-get download the trixie headers package into ``cache`` and unpack it."""
    _which_or_fail("apt-get", "apt")
    _which_or_fail("dpkg-deb", "dpkg")
    apt = cache / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "deb"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("STAR_DEBIAN_MIRROR", DEBIAN_MIRROR)
    signed = f" [signed-by={DEBIAN_KEYRING}]" if Path(DEBIAN_KEYRING).is_file() else ""
    (apt / "sources.list").write_text(f"deb{signed} {mirror} {HEADERS_SUITE} main\n")
    options = ["-o", f"Dir::Etc::sourcelist={apt / 'sources.list'}",
               "-o", "Dir::Etc::sourceparts=-",
               "-o", f"Dir::State::Lists={apt / 'lists'}",
               "-o", f"Dir::Cache={apt / 'cache'}",
               "-o", "APT::Get::List-Cleanup=0", "-q"]
    if os.geteuid() == 0:  # root: download as root instead of the _apt user (who cannot write here)
        options += ["-o", "APT::Sandbox::User=root"]
    else:
        options += ["-o", "Debug::NoLocking=1"]
    _run(["apt-get", *options, "update"], log, f"apt-get update ({HEADERS_SUITE} list)")
    deb_dir = apt / "deb"
    for old in deb_dir.glob("*.deb"):
        old.unlink()
    _run(["apt-get", *options, "download", HEADERS_PACKAGE], log,
         f"apt-get download {HEADERS_PACKAGE}", cwd=deb_dir)
    debs = sorted(deb_dir.glob(f"{HEADERS_PACKAGE}_*.deb"))
    if not debs:
        raise NativeBuildError(f"apt-get download left no {HEADERS_PACKAGE} .deb in '{deb_dir}'")
    tree = cache / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    _run(["dpkg-deb", "-x", str(debs[-1]), str(tree)], log, "dpkg-deb -x")
    headers = tree / "usr" / "include" / "onnxruntime"
    if not (headers / "onnxruntime_cxx_api.h").is_file():
        raise NativeBuildError(f"'{debs[-1].name}' holds no onnxruntime_cxx_api.h")
    (cache / "SOURCE").write_text(f"{debs[-1].name} from {mirror} {HEADERS_SUITE}\n")
    return headers


def ort_headers(build_dir: Path = DEFAULT_BUILD_DIR, fetch: bool = True) -> Path:
    """A folder holding ``onnxruntime_cxx_api.h`` (see the module docstring for the order)."""
    override = os.environ.get("STAR_ORT_INCLUDE_DIR")
    if override:
        if not (Path(override) / "onnxruntime_cxx_api.h").is_file():
            raise NativeBuildError(f"STAR_ORT_INCLUDE_DIR='{override}' has no "
                                   "onnxruntime_cxx_api.h")
        return Path(override)
    cache = Path(build_dir) / "ort-headers"
    cached = cache / "tree" / "usr" / "include" / "onnxruntime"
    if (cached / "onnxruntime_cxx_api.h").is_file():
        return cached
    system = Path("/usr/include/onnxruntime")
    if (system / "onnxruntime_cxx_api.h").is_file():
        return system
    if not fetch:
        raise NativeBuildError("no ONNX Runtime headers found (set STAR_ORT_INCLUDE_DIR)")
    return _fetch_headers(cache, Path(build_dir) / "logs" / "fetch-headers.log")


JUCE_CMAKE_DIRS = ("/usr/lib/x86_64-linux-gnu/cmake", "/usr/lib/aarch64-linux-gnu/cmake",
                   "/usr/lib/cmake", "/usr/local/lib/cmake", "/usr/share/cmake")


def juce_available() -> bool:
    """Whether CMake can find a JUCE config (Debian: juce-modules-source) or $JUCE_DIR."""
    if os.environ.get("JUCE_DIR"):
        return Path(os.environ["JUCE_DIR"]).is_dir()
    return any(any(Path(d).glob("JUCE*/JUCEConfig.cmake")) for d in JUCE_CMAKE_DIRS)


DPF_ROOT = Path(os.environ.get("STAR_DPF_ROOT") or "/usr/share/dpf")  # Debian's dpf-source


def dpf_available() -> bool:
    """Whether the DISTRHO Plugin Framework with its CLAP wrapper is installed (Debian:
    dpf-source, in /usr/share/dpf; or ``$STAR_DPF_ROOT``)."""
    return (DPF_ROOT / "distrho" / "src" / "DistrhoPluginCLAP.cpp").is_file()


def build_native(build_dir=None, jobs: int = 2, plugin: Optional[bool] = False,
                 source_dir=None, progress: Optional[Callable[[str], None]] = None,
                 model_dir=None, clap: Optional[bool] = None) -> NativeBuild:
    """Configure (when needed) and build ``native/``; returns the built paths.

    ``plugin``: also build STAR.vst3 and STAR.lv2 (JUCE, one processor); None: when JUCE is
    installed. ``clap``: also build star-clap-host and, with the plugins, STAR.clap (the same
    processor behind a CLAP entry; both use the CLAP headers of dpf-source); None (the
    default): when dpf-source is installed. ``model_dir``: an export folder (``star export``)
    to bundle in them (STAR.vst3/Contents/Resources/model, STAR.lv2/Resources/model, model/
    beside STAR.clap), with the example textures beside it.

    Rebuilding an up-to-date tree takes about a second (CMake's own dependency tracking)."""
    say = progress or (lambda message: None)
    source = Path(source_dir or SOURCE_DIR)
    if not (source / "CMakeLists.txt").is_file():
        raise NativeBuildError(f"'{source}' has no CMakeLists.txt: the native sources come with "
                               "a source checkout of star-plugin, not with the wheel")
    tools = check_tools()
    if plugin is None:
        plugin = juce_available()
    elif plugin and not juce_available():
        raise NativeBuildError("the VST3 plugin needs JUCE's CMake config (on Debian/Ubuntu: "
                               "sudo apt-get install juce-modules-source)")
    explicit_clap = clap is True
    if clap is None:
        clap = dpf_available()
    elif clap and not dpf_available():
        raise NativeBuildError("the CLAP plugin needs the CLAP headers of the DISTRHO Plugin "
                               "Framework (on Debian/Ubuntu: sudo apt-get install dpf-source)")
    if explicit_clap and not plugin:
        raise NativeBuildError("STAR.clap is the plugins' JUCE processor behind a CLAP entry: "
                               "it is built with the VST3 and LV2 (drop --no-vst3, or install "
                               "juce-modules-source)")
    build = Path(build_dir or DEFAULT_BUILD_DIR).resolve()
    build.mkdir(parents=True, exist_ok=True)
    library = ort_library()
    say("finding the ONNX Runtime headers")
    headers = ort_headers(build)
    log = build / "logs" / "build.log"
    if log.exists():
        log.unlink()
    wanted = {"source": str(source.resolve()), "ORT_INCLUDE_DIR": str(headers),
              "ORT_LIBRARY": str(library), "STAR_BUILD_PLUGIN": "ON" if plugin else "OFF",
              "CXX": tools["cxx"], "STAR_VERSION": __version__,
              "STAR_BUILD_CLAP": "ON" if clap else "OFF", "DPF_ROOT": str(DPF_ROOT)}
    stamp = build / "configured.json"
    configured = stamp.is_file() and json.loads(stamp.read_text()) == wanted and \
        (build / "CMakeCache.txt").is_file()
    if not configured:
        say("configuring with CMake")
        env = dict(os.environ, CXX=tools["cxx"])
        _run([tools["cmake"], "-S", str(source), "-B", str(build),
              "-DCMAKE_BUILD_TYPE=Release", f"-DORT_INCLUDE_DIR={headers}",
              f"-DORT_LIBRARY={library}", f"-DSTAR_BUILD_PLUGIN={wanted['STAR_BUILD_PLUGIN']}",
              f"-DSTAR_VERSION={__version__}", f"-DSTAR_BUILD_CLAP={wanted['STAR_BUILD_CLAP']}",
              f"-DDPF_ROOT={DPF_ROOT}"],
             log, "cmake configure", env=env)
        stamp.write_text(json.dumps(wanted, indent=1) + "\n")
    say(f"building with {jobs} job(s)")
    _run([tools["cmake"], "--build", str(build), "-j", str(max(1, int(jobs)))], log,
         "cmake --build")
    cli = build / "bin" / "star-engine-cli"
    if not cli.is_file():
        raise NativeBuildError(f"the build finished without '{cli}' -- full log: {log}")
    vst3 = lv2 = None
    if plugin:
        found = {fmt: sorted(build.glob(f"plugin/**/STAR.{fmt}")) for fmt in ("vst3", "lv2")}
        for fmt, paths in found.items():
            if not paths:
                raise NativeBuildError(f"the build finished without STAR.{fmt} -- full log: {log}")
        vst3, lv2 = found["vst3"][0], found["lv2"][0]
        if model_dir is not None:  # copied every time: CMake would skip an up-to-date target
            for bundle, resources in ((vst3, vst3 / "Contents" / "Resources"),
                                      (lv2, lv2 / "Resources")):
                say(f"bundling '{model_dir}' in {bundle.name}")
                _bundle_resources(resources, Path(model_dir))
            # the .ttl lists the Texture Source choices: the bundled textures, now
            _run([str(build / "plugin" / "juce_lv2_helper"), str(lv2 / "STAR.so")], log,
                 "writing STAR.lv2's .ttl files (juce_lv2_helper)",
                 env={k: v for k, v in os.environ.items()
                      if k not in ("STAR_MODEL_DIR", "STAR_TEXTURE")})
    clap_path = clap_host = None
    if clap:
        clap_path = build / "clap" / "STAR" / "STAR.clap" if plugin else None
        clap_host = build / "bin" / "star-clap-host"
        if (clap_path and not clap_path.is_file()) or not clap_host.is_file():
            raise NativeBuildError(f"the build finished without STAR.clap / star-clap-host -- "
                                   f"full log: {log}")
        if model_dir is not None and clap_path:  # model/ and textures/ beside STAR.clap
            say(f"bundling '{model_dir}' beside {clap_path.name}")
            _bundle_resources(clap_path.parent, Path(model_dir))
    lv2_host = build / "bin" / "star-lv2-host"
    return NativeBuild(build, cli, build / "bin" / "libonnxruntime.so.1", headers, vst3=vst3,
                       lv2=lv2, clap=clap_path, clap_host=clap_host,
                       lv2_host=lv2_host if lv2_host.is_file() else None)


def _bundle_resources(resources: Path, model_dir: Path) -> None:
    """A plugin bundle's Resources: the model (``model/``) and the bundled example sounds
    (presets/examples/*.flac) as its texture sources (``textures/NAME.wav``, the choices of its
    Texture Source parameter; used at the model's rate). WAV, because the plugin reads WAV only
    (no FLAC library linked)."""
    import soundfile

    from .bundled import presets_dir

    shutil.rmtree(resources / "model", ignore_errors=True)
    shutil.copytree(model_dir, resources / "model")
    textures = resources / "textures"
    shutil.rmtree(textures, ignore_errors=True)
    for example in sorted((presets_dir() / "examples").glob("*.flac")):
        audio, rate = soundfile.read(example, dtype="float32", always_2d=True)
        textures.mkdir(parents=True, exist_ok=True)
        soundfile.write(textures / f"{example.stem}.wav", audio, rate, subtype="FLOAT")


# ---------------------------------------------------------------------- `star plugin build`
def add_arguments(parser) -> None:
    parser.add_argument("-o", "--output", default=None,
                        help="copy the built CLI (and STAR.vst3, STAR.lv2, STAR.clap) with the "
                             "ONNX Runtime library here")
    parser.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR),
                        help="CMake build folder, reused between runs (default: build/native)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel compile jobs")
    parser.add_argument("--vst3", dest="vst3", action="store_true", default=None,
                        help="require the JUCE VST3 and LV2 plugins (by default they are built "
                             "when juce-modules-source is installed)")
    # SUPPRESS: the pair shares one default (None: build when found), shown once in --vst3's
    # help; store_false's own default (True) printed "(default: True)" after "--no-..."
    parser.add_argument("--no-vst3", dest="vst3", action="store_false", default=argparse.SUPPRESS,
                        help="skip the VST3 and LV2 plugins (default: built when JUCE is "
                             "found)")
    parser.add_argument("--clap", dest="clap", action="store_true", default=None,
                        help="require STAR.clap and star-clap-host (by default built when "
                             "dpf-source, whose CLAP headers they use, is installed); -o copies "
                             "STAR.clap and its textures beside the CLI")
    parser.add_argument("--no-clap", dest="clap", action="store_false", default=argparse.SUPPRESS,
                        help="do not build the CLAP plugin (default: built when dpf-source is "
                             "installed)")
    parser.add_argument("--model", default="default",
                        help="export this model (a bundled name such as 'default', or a "
                             "directory), bundle it inside STAR.vst3 and STAR.lv2 and copy it to "
                             "OUTPUT/model for star-engine-cli; "
                             "'none': no model (the plugin then reads $STAR_MODEL_DIR)")


def run(args) -> int:
    from .atomic import OutputGuard

    def say(message: str) -> None:
        print(f"  {message}", flush=True)

    # the output rule, before anything is exported, configured or compiled
    model = args.model if args.model and args.model.lower() != "none" else None
    model_dir = Path(model) if model and Path(model).is_dir() else None
    OutputGuard(directories=[("-o/--output", args.output), ("--build-dir", args.build_dir)],
                inputs=[p for p in (model_dir.iterdir() if model_dir else ()) if p.is_file()])

    exported = None
    if args.model and args.model.lower() != "none":
        from .export.exporter import export_model
        from .model_io import load_vae

        exported = Path(args.build_dir) / "model-export"
        say(f"exporting '{args.model}' to {exported}")
        export_model(load_vae(args.model), exported)
    build = build_native(args.build_dir, jobs=args.jobs, plugin=args.vst3, progress=say,
                         model_dir=exported, clap=getattr(args, "clap", None))
    print(f"built {build.cli}")
    for bundle in (build.vst3, build.lv2):
        if bundle:
            print(f"built {bundle}")
    if build.clap:
        print(f"built {build.clap}")
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for path in (build.cli, build.ort_library):
            shutil.copy2(path, out / path.name)
        for bundle in (build.vst3, build.lv2):
            if bundle:
                shutil.rmtree(out / bundle.name, ignore_errors=True)
                shutil.copytree(bundle, out / bundle.name, symlinks=True)
        if build.clap:  # beside libonnxruntime.so.1, model/ and textures/, as when built
            shutil.copy2(build.clap, out / build.clap.name)
            textures = build.clap.parent / "textures"
            if textures.is_dir():
                shutil.rmtree(out / "textures", ignore_errors=True)
                shutil.copytree(textures, out / "textures")
        if exported is not None:
            shutil.rmtree(out / "model", ignore_errors=True)
            shutil.copytree(exported, out / "model")
        print(f"copied to {out}/")
    return 0
