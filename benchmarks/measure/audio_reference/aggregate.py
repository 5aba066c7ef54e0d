#!/usr/bin/env python3
"""Aggregate runs/*.json into results.json and print a markdown table."""
import glob, json, os

BASE = os.environ.get('AUDIO_REFERENCE_DIR', '/work/baselines')  # where the tools were built (README.md)
runs = [json.load(open(p)) for p in sorted(glob.glob(f'{BASE}/runs/*.json'))]
flac = {(r['folder']): {x['file']: x for x in r['files']} for r in runs if r['tool'] == 'flac'}

res = {}
for r in runs:
    folder = r['folder']
    key = f"{r['tool']} {r['preset']}"
    ok = [x for x in r['files'] if x['ok']]
    bad = [x for x in r['files'] if not x['ok']]
    fl = flac[folder]
    flac_same = sum(fl[x['file']]['comp_bytes'] for x in ok if fl[x['file']]['ok'])
    assert all(fl[x['file']]['ok'] for x in ok)
    tot = sum(x['comp_bytes'] for x in ok)
    wav = sum(x['wav_bytes'] for x in ok)
    res.setdefault(folder, {})[key] = dict(
        files_ok=len(ok), files_failed=len(bad),
        failed=[dict(file=x['file'], bits=x['bits'], reason=x['reason']) for x in bad],
        wav_bytes=wav, total_bytes=tot,
        flac_total_bytes_same_files=flac_same,
        ratio_to_flac=round(tot / flac_same, 5),
        ratio_to_wav=round(tot / wav, 5),
        encode_seconds=round(sum(x['enc_s'] for x in ok), 3),
        decode_seconds=round(sum(x['dec_s'] for x in ok), 3),
        encode_cpu_seconds=round(sum(x['enc_cpu_s'] for x in ok), 3),
        decode_cpu_seconds=round(sum(x['dec_cpu_s'] for x in ok), 3),
    )
    # same-subset view for comparisons with sac (16-bit files only)
    if folder == 'music-heldout' and r['tool'] != 'sac':
        sub = [x for x in ok if x['bits'] <= 16]
        res[folder][key]['subset_16bit_only'] = dict(
            files=len(sub), total_bytes=sum(x['comp_bytes'] for x in sub),
            flac_total_bytes=sum(fl[x['file']]['comp_bytes'] for x in sub),
            encode_seconds=round(sum(x['enc_s'] for x in sub), 3),
            decode_seconds=round(sum(x['dec_s'] for x in sub), 3))

json.dump(res, open(f'{BASE}/results.json', 'w'), indent=1)

print('| folder | tool preset | ok/failed | bytes | flac bytes (same files) | ratio to flac | enc s | dec s |')
print('|---|---|---|---:|---:|---:|---:|---:|')
for folder, d in res.items():
    for key, v in d.items():
        print(f"| {folder} | {key} | {v['files_ok']}/{v['files_failed']} | {v['total_bytes']:,} | "
              f"{v['flac_total_bytes_same_files']:,} | {v['ratio_to_flac']:.4f} | "
              f"{v['encode_seconds']:.1f} | {v['decode_seconds']:.1f} |")
        s = v.get('subset_16bit_only')
        if s:
            print(f"| {folder} (16-bit only) | {key} | {s['files']}/- | {s['total_bytes']:,} | "
                  f"{s['flac_total_bytes']:,} | {s['total_bytes']/s['flac_total_bytes']:.4f} | "
                  f"{s['encode_seconds']:.1f} | {s['decode_seconds']:.1f} |")

# ---- indicative subset runs (sac --high was too slow for the full folders) ----
sub = {}
for p in sorted(glob.glob(f'{BASE}/runs_subset/*.json')):
    r = json.load(open(p))
    ok = [x for x in r['files'] if x['ok']]
    sub.setdefault(r['folder'], {})[f"{r['tool']} {r['preset']}"] = dict(
        files_ok=len(ok), files_failed=len(r['files']) - len(ok),
        files=[x['file'] for x in r['files']],
        wav_bytes=sum(x['wav_bytes'] for x in ok), total_bytes=sum(x['comp_bytes'] for x in ok),
        encode_seconds=round(sum(x['enc_s'] for x in ok), 3),
        decode_seconds=round(sum(x['dec_s'] for x in ok), 3))
for folder, d in sub.items():
    fb = d['flac -8']['total_bytes']
    for v in d.values():
        v['ratio_to_flac'] = round(v['total_bytes'] / fb, 5)
if sub:
    res['indicative_subsets'] = sub
    json.dump(res, open(f'{BASE}/results.json', 'w'), indent=1)
    print('\nIndicative subsets:')
    print('| folder subset | tool preset | files | bytes | ratio to flac | enc s | dec s |')
    print('|---|---|---|---:|---:|---:|---:|')
    for folder, d in sub.items():
        for k, v in d.items():
            print(f"| {folder} | {k} | {v['files_ok']} | {v['total_bytes']:,} | {v['ratio_to_flac']:.4f} | "
                  f"{v['encode_seconds']:.1f} | {v['decode_seconds']:.1f} |")
