#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: backscatter stream watcher
# Author: backscatter testbed
# Description: Plots the IQ that `backscatter stream --gnuradio-socket pub --gnuradio-tags --gnuradio-bind central=tcp://127.0.0.1:5611 --gnuradio-bind lower=tcp://127.0.0.1:5612 --gnuradio-bind upper=tcp://127.0.0.1:5613` publishes: spectra and time traces of the three bands (QT GUI sinks)
# GNU Radio version: 3.10.5.1

from packaging.version import Version as StrictVersion

if __name__ == '__main__':
    import ctypes
    import sys
    if sys.platform.startswith('linux'):
        try:
            x11 = ctypes.cdll.LoadLibrary('libX11.so')
            x11.XInitThreads()
        except:
            print("Warning: failed to XInitThreads()")

from PyQt5 import Qt
from gnuradio import qtgui
from gnuradio.filter import firdes
import sip
from gnuradio import gr
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import zeromq



from gnuradio import qtgui

class watch_stream(gr.top_block, Qt.QWidget):

    def __init__(self, samp_rate=30.72e6, port_base=5611):
        gr.top_block.__init__(self, "backscatter stream watcher", catch_exceptions=True)
        Qt.QWidget.__init__(self)
        self.setWindowTitle("backscatter stream watcher")
        qtgui.util.check_set_qss()
        try:
            self.setWindowIcon(Qt.QIcon.fromTheme('gnuradio-grc'))
        except:
            pass
        self.top_scroll_layout = Qt.QVBoxLayout()
        self.setLayout(self.top_scroll_layout)
        self.top_scroll = Qt.QScrollArea()
        self.top_scroll.setFrameStyle(Qt.QFrame.NoFrame)
        self.top_scroll_layout.addWidget(self.top_scroll)
        self.top_scroll.setWidgetResizable(True)
        self.top_widget = Qt.QWidget()
        self.top_scroll.setWidget(self.top_widget)
        self.top_layout = Qt.QVBoxLayout(self.top_widget)
        self.top_grid_layout = Qt.QGridLayout()
        self.top_layout.addLayout(self.top_grid_layout)

        self.settings = Qt.QSettings("GNU Radio", "watch_stream")

        try:
            if StrictVersion(Qt.qVersion()) < StrictVersion("5.0.0"):
                self.restoreGeometry(self.settings.value("geometry").toByteArray())
            else:
                self.restoreGeometry(self.settings.value("geometry"))
        except:
            pass

        ##################################################
        # Parameters
        ##################################################
        self.samp_rate = samp_rate
        self.port_base = port_base

        ##################################################
        # Blocks
        ##################################################

        self.zeromq_sub_source_upper = zeromq.sub_source(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % (port_base + 2), 100, True, (-1), "")
        self.zeromq_sub_source_lower = zeromq.sub_source(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % (port_base + 1), 100, True, (-1), "")
        self.zeromq_sub_source_central = zeromq.sub_source(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % port_base, 100, True, (-1), "")
        self.qtgui_time_sink_bands = qtgui.time_sink_c(
            2048, #size
            samp_rate, #samp_rate
            "bands (IQ)", #name
            3, #number of inputs
            None # parent
        )
        self.qtgui_time_sink_bands.set_update_time(0.10)
        self.qtgui_time_sink_bands.set_y_axis(-1, 1)

        self.qtgui_time_sink_bands.set_y_label('Amplitude', "")

        self.qtgui_time_sink_bands.enable_tags(True)
        self.qtgui_time_sink_bands.set_trigger_mode(qtgui.TRIG_MODE_FREE, qtgui.TRIG_SLOPE_POS, 0.0, 0, 0, "")
        self.qtgui_time_sink_bands.enable_autoscale(True)
        self.qtgui_time_sink_bands.enable_grid(True)
        self.qtgui_time_sink_bands.enable_axis_labels(True)
        self.qtgui_time_sink_bands.enable_control_panel(False)
        self.qtgui_time_sink_bands.enable_stem_plot(False)


        labels = ['central I', 'central Q', 'lower I', 'lower Q', 'upper I',
            'upper Q', 'Signal 7', 'Signal 8', 'Signal 9', 'Signal 10']
        widths = [1, 1, 1, 1, 1,
            1, 1, 1, 1, 1]
        colors = ['blue', 'red', 'green', 'black', 'cyan',
            'magenta', 'yellow', 'dark red', 'dark green', 'dark blue']
        alphas = [1.0, 1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0, 1.0]
        styles = [1, 1, 1, 1, 1,
            1, 1, 1, 1, 1]
        markers = [-1, -1, -1, -1, -1,
            -1, -1, -1, -1, -1]


        for i in range(6):
            if len(labels[i]) == 0:
                if (i % 2 == 0):
                    self.qtgui_time_sink_bands.set_line_label(i, "Re{{Data {0}}}".format(i/2))
                else:
                    self.qtgui_time_sink_bands.set_line_label(i, "Im{{Data {0}}}".format(i/2))
            else:
                self.qtgui_time_sink_bands.set_line_label(i, labels[i])
            self.qtgui_time_sink_bands.set_line_width(i, widths[i])
            self.qtgui_time_sink_bands.set_line_color(i, colors[i])
            self.qtgui_time_sink_bands.set_line_style(i, styles[i])
            self.qtgui_time_sink_bands.set_line_marker(i, markers[i])
            self.qtgui_time_sink_bands.set_line_alpha(i, alphas[i])

        self._qtgui_time_sink_bands_win = sip.wrapinstance(self.qtgui_time_sink_bands.qwidget(), Qt.QWidget)
        self.top_grid_layout.addWidget(self._qtgui_time_sink_bands_win, 1, 0, 1, 1)
        for r in range(1, 2):
            self.top_grid_layout.setRowStretch(r, 1)
        for c in range(0, 1):
            self.top_grid_layout.setColumnStretch(c, 1)
        self.qtgui_freq_sink_bands = qtgui.freq_sink_c(
            1024, #size
            window.WIN_BLACKMAN_hARRIS, #wintype
            0, #fc
            samp_rate, #bw
            "bands (baseband)", #name
            3,
            None # parent
        )
        self.qtgui_freq_sink_bands.set_update_time(0.10)
        self.qtgui_freq_sink_bands.set_y_axis((-140), 10)
        self.qtgui_freq_sink_bands.set_y_label('Relative Gain', 'dB')
        self.qtgui_freq_sink_bands.set_trigger_mode(qtgui.TRIG_MODE_FREE, 0.0, 0, "")
        self.qtgui_freq_sink_bands.enable_autoscale(False)
        self.qtgui_freq_sink_bands.enable_grid(True)
        self.qtgui_freq_sink_bands.set_fft_average(0.2)
        self.qtgui_freq_sink_bands.enable_axis_labels(True)
        self.qtgui_freq_sink_bands.enable_control_panel(False)
        self.qtgui_freq_sink_bands.set_fft_window_normalized(False)



        labels = ['central', 'lower', 'upper', '', '',
            '', '', '', '', '']
        widths = [1, 1, 1, 1, 1,
            1, 1, 1, 1, 1]
        colors = ["blue", "red", "green", "black", "cyan",
            "magenta", "yellow", "dark red", "dark green", "dark blue"]
        alphas = [1.0, 1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0, 1.0]

        for i in range(3):
            if len(labels[i]) == 0:
                self.qtgui_freq_sink_bands.set_line_label(i, "Data {0}".format(i))
            else:
                self.qtgui_freq_sink_bands.set_line_label(i, labels[i])
            self.qtgui_freq_sink_bands.set_line_width(i, widths[i])
            self.qtgui_freq_sink_bands.set_line_color(i, colors[i])
            self.qtgui_freq_sink_bands.set_line_alpha(i, alphas[i])

        self._qtgui_freq_sink_bands_win = sip.wrapinstance(self.qtgui_freq_sink_bands.qwidget(), Qt.QWidget)
        self.top_grid_layout.addWidget(self._qtgui_freq_sink_bands_win, 0, 0, 1, 1)
        for r in range(0, 1):
            self.top_grid_layout.setRowStretch(r, 1)
        for c in range(0, 1):
            self.top_grid_layout.setColumnStretch(c, 1)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.zeromq_sub_source_central, 0), (self.qtgui_freq_sink_bands, 0))
        self.connect((self.zeromq_sub_source_central, 0), (self.qtgui_time_sink_bands, 0))
        self.connect((self.zeromq_sub_source_lower, 0), (self.qtgui_freq_sink_bands, 1))
        self.connect((self.zeromq_sub_source_lower, 0), (self.qtgui_time_sink_bands, 1))
        self.connect((self.zeromq_sub_source_upper, 0), (self.qtgui_freq_sink_bands, 2))
        self.connect((self.zeromq_sub_source_upper, 0), (self.qtgui_time_sink_bands, 2))


    def closeEvent(self, event):
        self.settings = Qt.QSettings("GNU Radio", "watch_stream")
        self.settings.setValue("geometry", self.saveGeometry())
        self.stop()
        self.wait()

        event.accept()

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate
        self.qtgui_freq_sink_bands.set_frequency_range(0, self.samp_rate)
        self.qtgui_time_sink_bands.set_samp_rate(self.samp_rate)

    def get_port_base(self):
        return self.port_base

    def set_port_base(self, port_base):
        self.port_base = port_base



def argument_parser():
    description = 'Plots the IQ that `backscatter stream --gnuradio-socket pub --gnuradio-tags --gnuradio-bind central=tcp://127.0.0.1:5611 --gnuradio-bind lower=tcp://127.0.0.1:5612 --gnuradio-bind upper=tcp://127.0.0.1:5613` publishes: spectra and time traces of the three bands (QT GUI sinks)'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--samp-rate", dest="samp_rate", type=eng_float, default=eng_notation.num_to_str(float(30.72e6)),
        help="Set capture rate (Hz) [default=%(default)r]")
    parser.add_argument(
        "--port-base", dest="port_base", type=intx, default=5611,
        help="Set first ZMQ port (central; lower +1, upper +2) [default=%(default)r]")
    return parser


def main(top_block_cls=watch_stream, options=None):
    if options is None:
        options = argument_parser().parse_args()

    if StrictVersion("4.5.0") <= StrictVersion(Qt.qVersion()) < StrictVersion("5.0.0"):
        style = gr.prefs().get_string('qtgui', 'style', 'raster')
        Qt.QApplication.setGraphicsSystem(style)
    qapp = Qt.QApplication(sys.argv)

    tb = top_block_cls(samp_rate=options.samp_rate, port_base=options.port_base)

    tb.start()

    tb.show()

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        Qt.QApplication.quit()

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    timer = Qt.QTimer()
    timer.start(500)
    timer.timeout.connect(lambda: None)

    qapp.exec_()

if __name__ == '__main__':
    main()
