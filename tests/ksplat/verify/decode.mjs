// Decodes a .ksplat file with @mkkellogg/gaussian-splats-3d's own loader and
// SplatBuffer accessors (the ones its SplatMesh uses to fill GPU textures) and
// prints every splat as JSON, in the library's order.
//
//   node decode.mjs FILE.ksplat > out.json
//
// The file is loaded twice: with KSplatLoader.loadFromFileData (whole buffer)
// and with KSplatLoader.loadFromURL in progressive mode (what a browser does
// while downloading, driven by the section headers' storage sizes). The two
// decodes must agree, otherwise the script exits non-zero.

import { readFileSync } from 'node:fs';

// loadFromFileData and the progressive loader schedule work with
// window.setTimeout; Node has setTimeout on globalThis, so alias it. Nothing
// else in the decode path touches browser globals.
globalThis.window ??= globalThis;

const { KSplatLoader, SplatBuffer } = await import('@mkkellogg/gaussian-splats-3d');

const path = process.argv[2];
if (!path) {
    console.error('usage: node decode.mjs FILE.ksplat');
    process.exit(2);
}

const file = readFileSync(path);
// A Node Buffer may be a view into a larger pooled ArrayBuffer: copy it out.
const arrayBuffer = () => file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);

function decodeSplats(splatBuffer) {
    const n = splatBuffer.getSplatCount();
    const centers = new Float32Array(n * 3);
    const scales = new Float32Array(n * 3);
    const rotations = new Float32Array(n * 4);
    const colors = new Uint8Array(n * 4);
    if (n > 0) {
        splatBuffer.fillSplatCenterArray(centers, undefined, 0, n - 1, 0);
        // Output compression level 0 = plain floats; rotations come out as
        // normalised x, y, z, w with w >= 0.
        splatBuffer.fillSplatScaleRotationArray(scales, rotations, undefined, 0, n - 1, 0, 0);
        splatBuffer.fillSplatColorArray(colors, 0, 0, n - 1, 0);
    }
    const splats = [];
    for (let i = 0; i < n; i++) {
        const r = rotations.subarray(i * 4, i * 4 + 4);
        splats.push({
            center: Array.from(centers.subarray(i * 3, i * 3 + 3)),
            scale: Array.from(scales.subarray(i * 3, i * 3 + 3)),
            rotation_wxyz: [r[3], r[0], r[1], r[2]],
            color: Array.from(colors.subarray(i * 4, i * 4 + 4)),
        });
    }
    return splats;
}

function loadProgressively() {
    const dataUrl = 'data:application/octet-stream;base64,' + file.toString('base64');
    let last;
    const load = KSplatLoader.loadFromURL(dataUrl, undefined, true, (splatBuffer) => {
        last = splatBuffer;
    });
    const timeout = new Promise((_, reject) => {
        setTimeout(() => reject(new Error('progressive load timed out')), 60_000).unref();
    });
    return Promise.race([load, timeout]).then((splatBuffer) => splatBuffer || last);
}

const header = SplatBuffer.parseHeader(arrayBuffer());
const splatBuffer = await KSplatLoader.loadFromFileData(arrayBuffer());
const sections = splatBuffer.sections.map((s) => ({
    splatCount: s.splatCount,
    maxSplatCount: s.maxSplatCount,
    bucketSize: s.bucketSize,
    bucketCount: s.bucketCount,
    bucketBlockSize: s.bucketBlockSize,
    bucketStorageSizeBytes: s.bucketStorageSizeBytes,
    compressionScaleRange: s.compressionScaleRange,
    storageSizeBytes: s.storageSizeBytes,
    fullBucketCount: s.fullBucketCount,
    partiallyFilledBucketCount: s.partiallyFilledBucketCount,
    sphericalHarmonicsDegree: s.sphericalHarmonicsDegree,
}));
// The size the loaders derive from the headers; progressive loading waits
// for exactly this many bytes.
const expectedBytes = SplatBuffer.HeaderSizeBytes +
    header.maxSectionCount * SplatBuffer.SectionHeaderSizeBytes +
    sections.reduce((sum, s) => sum + s.storageSizeBytes, 0);

const splats = decodeSplats(splatBuffer);
const progressive = decodeSplats(await loadProgressively());
const progressiveMatches = JSON.stringify(progressive) === JSON.stringify(splats);

process.stdout.write(JSON.stringify({
    library: '@mkkellogg/gaussian-splats-3d',
    header: { ...header, sceneCenter: header.sceneCenter.toArray() },
    sections,
    fileBytes: file.byteLength,
    expectedBytes,
    progressiveMatches,
    splats,
}));
process.stdout.write('\n');
if (!progressiveMatches) {
    console.error('progressive and whole-file decodes differ');
    process.exit(1);
}
