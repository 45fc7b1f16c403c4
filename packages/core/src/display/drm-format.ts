/** DRM pixel formats a display plane reports (include/uapi/drm/drm_fourcc.h): four ASCII bytes, little-endian. */
const fourcc = (s: string): number =>
  (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;

// drm_fourcc.h: [31:0] x:R:G:B 8:8:8:8 little endian
export const DRM_FORMAT_XRGB8888 = fourcc('XR24');
// drm_fourcc.h: [31:0] x:B:G:R 8:8:8:8 little endian
export const DRM_FORMAT_XBGR8888 = fourcc('XB24');
// drm_fourcc.h: [31:0] A:R:G:B 8:8:8:8 little endian
export const DRM_FORMAT_ARGB8888 = fourcc('AR24');
