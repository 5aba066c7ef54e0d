#!/usr/bin/env python3
"""Sequential lossless-audio baseline benchmark.

usage: bench.py TOOL PRESET FOLDER [FOLDER...]
  TOOL: flac | mac | mac11 | sac
Writes per-file results to $AUDIO_REFERENCE_DIR/runs/<tool>_<preset>_<folder>.json
"""
import json, os, resource, struct, subprocess, sys, time

BASE = os.environ.get('AUDIO_REFERENCE_DIR', '/work/baselines')  # where the tools were built (README.md)
MAC = f'{BASE}/src/mac/build/mac'        # Monkey's Audio 3.99 (fernandotcl port)
MAC11 = f'{BASE}/src/mac11/build/mac'    # Monkey's Audio 11.57 (Snesnopic/MACLib)
SAC = f'{BASE}/src/sac/sac'
FLAC = '/usr/bin/flac'
TIMEOUT = 600  # per command safety net


def step(row, name, cmd, made):
    """Run one command (timed into row[name_s], row[name_cpu_s]); False, with the reason in row,
    where it failed or did not write ``made``."""
    rc, wall, cpu, err = timed(cmd)
    row.update({f'{name}_s': wall, f'{name}_cpu_s': cpu})
    if rc != 0 or not os.path.exists(made):
        row.update(ok=False, reason=f"{'encode' if name == 'enc' else 'decode'} rc={rc}: {err.strip()}")
        return False
    return True


def wav_info(path):
    """Return (fmt tuple, pcm bytes) from a RIFF/WAVE file."""
    b = open(path, 'rb').read()
    assert b[:4] == b'RIFF' and b[8:12] == b'WAVE', path
    i, fmt, data = 12, None, None
    while i + 8 <= len(b):
        cid = b[i:i + 4]
        sz = struct.unpack('<I', b[i + 4:i + 8])[0]
        if cid == b'fmt ':
            fmt = struct.unpack('<HHIIHH', b[i + 8:i + 24])
        elif cid == b'data':
            data = b[i + 8:i + 8 + sz]
        i += 8 + sz + (sz & 1)
    return fmt, data


def cmds(tool, preset, src, comp, dec):
    if tool == 'flac':
        enc = [FLAC, '-8', '--no-padding', '-s', '-f', '-o', comp, src]
        de = [FLAC, '-d', '-s', '-f', '-o', dec, comp]
    elif tool == 'mac':
        enc = [MAC, src, comp, preset]          # preset = -c4000 / -c5000
        de = [MAC, comp, dec, '-d']
    elif tool == 'mac11':
        enc = [MAC11, src, comp, preset]
        de = [MAC11, comp, dec, '-d']
    elif tool == 'sac':
        enc = [SAC, '--encode', preset, src, comp]  # preset = --normal / --high
        de = [SAC, '--decode', comp, dec]
    else:
        raise ValueError(tool)
    return enc, de


def timed(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT)
        rc, err = p.returncode, p.stderr.decode('latin1')[-300:]
    except subprocess.TimeoutExpired:
        rc, err = 'timeout', f'timeout after {TIMEOUT}s'
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return rc, wall, cpu, err


def run(tool, preset, folder):
    src_dir = os.path.join(os.environ.get('AUDIO_DATA', 'data/audio'), folder)
    pname = preset.lstrip('-') or 'default'
    out_dir = f'{BASE}/out/{tool}_{pname}/{folder}'
    os.makedirs(out_dir, exist_ok=True)
    ext = {'flac': 'flac', 'mac': 'ape', 'mac11': 'ape', 'sac': 'sac'}[tool]
    files = sorted(f for f in os.listdir(src_dir) if f.endswith('.wav'))
    subset = os.environ.get('BENCH_SUBSET')  # optional file with one wav name per line
    runs_dir = f'{BASE}/runs'
    if subset:
        keep = set(open(subset).read().split())
        files = [f for f in files if f in keep]
        runs_dir = f'{BASE}/runs_subset'
        out_dir += '_subset'
        os.makedirs(out_dir, exist_ok=True)
    rows = []
    for f in files:
        src = os.path.join(src_dir, f)
        comp = os.path.join(out_dir, f[:-4] + '.' + ext)
        dec = os.path.join(out_dir, f[:-4] + '.dec.wav')
        fmt, pcm = wav_info(src)
        row = dict(file=f, wav_bytes=os.path.getsize(src), channels=fmt[1], rate=fmt[2], bits=fmt[5])
        if tool == 'sac' and fmt[5] > 16:
            # sac documents "1-16 bit" input only; a probe on a 24-bit file encoded
            # without error but the decoder spun >10 min without output.
            row.update(ok=False, reason='unsupported: sac supports 1-16 bit PCM only')
            rows.append(row)
            continue
        enc, de = cmds(tool, preset, src, comp, dec)
        for p in (comp, dec):
            if os.path.exists(p):
                os.remove(p)
        if not step(row, 'enc', enc, comp):
            rows.append(row)
            continue
        row['comp_bytes'] = os.path.getsize(comp)
        if not step(row, 'dec', de, dec):
            rows.append(row)
            continue
        same_file = open(src, 'rb').read() == open(dec, 'rb').read()
        if same_file:
            row.update(ok=True, verify='byte-identical file')
        else:
            dfmt, dpcm = wav_info(dec)
            if dpcm == pcm and dfmt[1:] == fmt[1:]:
                row.update(ok=True, verify='identical fmt+PCM (header differs)')
            else:
                row.update(ok=False, reason='decoded PCM differs')
        os.remove(dec)
        rows.append(row)
        print(f'{tool} {preset} {folder} {f} ok={row["ok"]} {row.get("comp_bytes")} '
              f"enc={row['enc_s']:.2f}s dec={row['dec_s']:.2f}s", flush=True)
    os.makedirs(runs_dir, exist_ok=True)
    with open(f'{runs_dir}/{tool}_{pname}_{folder}.json', 'w') as fh:
        json.dump(dict(tool=tool, preset=preset, folder=folder, files=rows), fh, indent=1)


if __name__ == '__main__':
    tool, preset = sys.argv[1], sys.argv[2]
    for folder in sys.argv[3:]:
        run(tool, preset, folder)
