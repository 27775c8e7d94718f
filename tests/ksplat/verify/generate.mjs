// Converts a PLY to .ksplat with @mkkellogg/gaussian-splats-3d's OWN pipeline
// (PlyParser + SplatBufferGenerator, as its PlyLoader does when
// optimizeSplatData is on), so the Rust output can be compared byte-for-byte.
//
//   node generate.mjs IN.ply OUT.ksplat CX CY CZ
//
// Options match the Rust converter: alpha removal threshold 15, compression
// level 2, one section (section size 0), block size 5.0, bucket size 256,
// SH degree 0, scene centre given on the command line. No decimation.

import { readFileSync, writeFileSync } from 'node:fs';
import * as THREE from 'three';
import { PlyParser, SplatBufferGenerator } from '@mkkellogg/gaussian-splats-3d';

const [plyPath, outPath, cx, cy, cz] = process.argv.slice(2);
if (!plyPath || !outPath || cz === undefined) {
    console.error('usage: node generate.mjs IN.ply OUT.ksplat CX CY CZ');
    process.exit(2);
}

const file = readFileSync(plyPath);
const plyBuffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
const splatArray = PlyParser.parseToUncompressedSplatArray(plyBuffer, 0);
const sceneCenter = new THREE.Vector3(Number(cx), Number(cy), Number(cz));
const generator = SplatBufferGenerator.getStandardGenerator(15, 2, 0, sceneCenter, 5.0, 256);
const splatBuffer = generator.generateFromUncompressedSplatArray(splatArray);
writeFileSync(outPath, new Uint8Array(splatBuffer.bufferData));
console.log(JSON.stringify({ splats: splatBuffer.getSplatCount(), bytes: splatBuffer.bufferData.byteLength }));
