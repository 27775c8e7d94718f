// Loads one splat file with @sparkjsdev/spark's SplatMesh, renders it with a
// three.js WebGLRenderer and reports through window.__result:
//   { ok, numSplats, error, stats }
// Query: ?file=URL&type=ply|ksplat[&source=bytes|url|blob-url]
//   source=bytes     (default) new SplatMesh({ fileBytes, fileType })
//   source=url       new SplatMesh({ url: file, fileType })  (same-origin URL)
//   source=blob-url  new SplatMesh({ url: URL.createObjectURL(blob), fileType })
// Note: in spark 0.1.10 the `url` path ignores `fileType` (PackedSplats
// creates a SplatLoader without it) and guesses from magic bytes or the URL's
// extension, so a .ksplat from an extension-less blob: URL cannot load.
import * as THREE from 'three';
import { SplatMesh, SplatFileType } from '@sparkjsdev/spark';

const pageErrors = [];
window.addEventListener('error', (e) => pageErrors.push(`error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) =>
  pageErrors.push(`unhandledrejection: ${e.reason?.stack ?? e.reason}`));

const nextFrame = () => new Promise((r) => requestAnimationFrame(r));

function describe(e) {
  if (e instanceof Error) return e.stack?.includes(e.message) ? e.stack : `${e.name}: ${e.message}\n${e.stack ?? ''}`;
  if (e && typeof e === 'object' && 'message' in e) return `${e.name ?? 'Error'}: ${e.message}`;
  return String(e);
}

async function run() {
  const q = new URLSearchParams(location.search);
  const file = q.get('file');
  const type = q.get('type');
  const source = q.get('source') ?? 'bytes';
  const fileType = { ply: SplatFileType.PLY, ksplat: SplatFileType.KSPLAT }[type];
  if (!file || !fileType) throw new Error(`bad query: file=${file} type=${type} (type must be ply or ksplat)`);
  if (!window.crossOriginIsolated) throw new Error('page is not cross-origin isolated (COOP/COEP headers missing)');

  const response = await fetch(file);
  if (!response.ok) throw new Error(`fetch ${file}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const fileSize = bytes.byteLength;

  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 256;
  document.body.append(canvas);
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
  const gl = renderer.getContext();
  if (!(gl instanceof WebGL2RenderingContext)) throw new Error('WebGL2 not available');
  renderer.setClearColor(0x000000, 1);

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(60, 1, 0.01, 10000);

  let mesh;
  if (source === 'bytes') {
    mesh = new SplatMesh({ fileBytes: bytes, fileType });
  } else if (source === 'url') {
    mesh = new SplatMesh({ url: file, fileType });
  } else if (source === 'blob-url') {
    const url = URL.createObjectURL(new Blob([bytes]));
    mesh = new SplatMesh({ url, fileType });
  } else {
    throw new Error(`bad source ${source}`);
  }
  scene.add(mesh);
  // WebGL errors are sticky until read; record where each one first shows.
  const glErrors = [];
  const checkGl = (where) => {
    for (let e = gl.getError(); e !== gl.NO_ERROR; e = gl.getError()) glErrors.push(`0x${e.toString(16)} after ${where}`);
  };
  checkGl('context creation');
  renderer.render(scene, camera); // a frame while the file is still decoding
  checkGl('first render (before load)');

  await mesh.initialized; // SplatMesh readiness promise (rejects on decode errors)
  if (!mesh.isInitialized) throw new Error('mesh.initialized resolved but isInitialized is false');

  // Decoded data, read back from Spark's packed representation.
  const box = new THREE.Box3();
  let finite = 0;
  let minOpacity = Infinity;
  let maxOpacity = -Infinity;
  mesh.packedSplats.forEachSplat((i, center, scales, quaternion, opacity) => {
    if (Number.isFinite(center.x) && Number.isFinite(center.y) && Number.isFinite(center.z)) {
      finite += 1;
      box.expandByPoint(center);
    }
    minOpacity = Math.min(minOpacity, opacity);
    maxOpacity = Math.max(maxOpacity, opacity);
  });

  if (!(mesh.numSplats > 0)) {
    // Spark accepts an empty file silently; for the app that is a blank view.
    return { ok: false, numSplats: mesh.numSplats, error: `file decoded to ${mesh.numSplats} splats`, stats: { source, fileBytes: fileSize } };
  }

  // Look at the whole scene and render until splats show up (Spark sorts in
  // a worker, so the first frames after loading can be empty).
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(box.getSize(new THREE.Vector3()).length() / 2, 1e-3);
  camera.position.copy(centre).add(new THREE.Vector3(0, 0, radius * 2));
  camera.near = radius / 100;
  camera.far = radius * 10;
  camera.updateProjectionMatrix();
  camera.lookAt(centre);

  const pixels = new Uint8Array(canvas.width * canvas.height * 4);
  let litPixels = 0;
  let frames = 0;
  const deadline = performance.now() + 15000;
  while (performance.now() < deadline) {
    renderer.render(scene, camera);
    frames += 1;
    checkGl(`render ${frames}`);
    await nextFrame();
    checkGl(`frame ${frames} idle`);
    // Read the canvas itself. Spark's sort readback may leave a pixel-pack
    // buffer or its own framebuffer bound; unbind them for this read only.
    const pbo = gl.getParameter(gl.PIXEL_PACK_BUFFER_BINDING);
    const fbo = gl.getParameter(gl.READ_FRAMEBUFFER_BINDING);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, null);
    gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, fbo);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, pbo);
    litPixels = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i] | pixels[i + 1] | pixels[i + 2]) litPixels += 1;
    }
    checkGl(`readPixels ${frames}`);
    if (litPixels > 0 && frames >= 3) break;
  }

  const numSplats = mesh.numSplats;
  const stats = {
    source,
    fileBytes: fileSize,
    packedNumSplats: mesh.packedSplats.numSplats,
    finiteCentres: finite,
    minOpacity: Number(minOpacity.toFixed(4)),
    maxOpacity: Number(maxOpacity.toFixed(4)),
    bboxMin: box.min.toArray().map((v) => Number(v.toFixed(3))),
    bboxMax: box.max.toArray().map((v) => Number(v.toFixed(3))),
    frames,
    litPixels,
    glErrors,
    renderer: gl.getParameter(gl.getExtension('WEBGL_debug_renderer_info')?.UNMASKED_RENDERER_WEBGL ?? gl.RENDERER),
  };

  const problems = [...pageErrors];
  if (glErrors.length) problems.push(`WebGL errors: ${glErrors.join('; ')}`);
  if (finite !== numSplats) problems.push(`${numSplats - finite} splats have non-finite centres`);
  if (litPixels === 0) problems.push(`nothing was drawn after ${frames} frames`);
  return problems.length === 0
    ? { ok: true, numSplats, stats }
    : { ok: false, numSplats, error: problems.join('\n'), stats };
}

run().then(
  (result) => { window.__result = result; },
  (e) => {
    window.__result = { ok: false, error: [describe(e), ...pageErrors].join('\n') };
  },
);
